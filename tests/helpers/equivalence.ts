import type { ChildProcess } from 'node:child_process';
import { expect } from 'vitest';
import { loadDataset, meanImage } from '@ganfleet/shared/data';
import { getPreset, initParams, startFromData } from '@ganfleet/shared/model';
import { type RoundLog, type RunSettings, type TrainingRun, startCoordinator, trainInProcess } from '@ganfleet/coordinator';
import { sameBytes } from './bytes.js';
import { TEST_DATA, type Topology, exited, leavesOf, loopback, memoryLogger, spawnTree, spawnWorker, testRun } from './cluster.js';

/*
 * The test that proves the design: N worker processes with batch b give the same parameters
 * as the single-process trainer accumulating N micro-batches of b, and so does a tree of relays
 * over N workers. Both sides run the same kernels on the same inputs, and a round's gradient is
 * the exact sum of the contributions rounded once (exactSum.ts), so equality is exact.
 */

/**
 * The compared runs cross the pre-training boundary: `mlp` 4 D rounds + 4 iterations of (D, G),
 * 12 rounds; `conv`, many times slower per round, 1 + 2 iterations, 5 rounds.
 */
export function equivalenceRun(preset: string, batchSize: number): RunSettings {
  const [pretrainSteps, steps] = preset === 'conv' ? [1, 2] : [4, 4];
  // An averaged generator on both presets (conv's defaults keep none), so that it is compared too.
  return testRun({ preset, seed: 11, batchSize, pretrainSteps, steps, emaDecay: 0.9999 });
}

/** Byte-for-byte equality of every array of two parameter maps (and the same names). */
function expectIdentical(got: ReadonlyMap<string, Float32Array> | undefined, expected: ReadonlyMap<string, Float32Array> | undefined, what: string): void {
  expect(got, what).toBeDefined();
  expect([...(got as ReadonlyMap<string, Float32Array>).keys()], what).toEqual([...(expected as ReadonlyMap<string, Float32Array>).keys()]);
  for (const [name, values] of expected ?? []) expect(sameBytes(got?.get(name), values), `${what} ${name}`).toBe(true);
}

/**
 * One comparison: the in-process trainer in this process (on the backend selected in beforeAll)
 * against n worker processes on `backend`, with `extra` worker flags; or against the workers of a
 * tree of relays, as many micro-batches as it has leaves.
 */
export async function expectDistributedEqualsInProcess(
  preset: string,
  batchSize: number,
  workers: number | Topology,
  backend: string,
  extra: string[] = [],
): Promise<void> {
  const n = typeof workers === 'number' ? workers : leavesOf(workers);
  const { log, lines } = memoryLogger('warn');
  const reference = await trainInProcess({ settings: equivalenceRun(preset, batchSize), microBatches: n, log });
  const coordinator = await startCoordinator({ settings: { ...equivalenceRun(preset, batchSize), minWorkers: n }, server: loopback(), log });
  const rounds: RoundLog[] = [];
  coordinator.events.on('round', (r) => rounds.push(r));
  const processes: ChildProcess[] = [];
  try {
    if (typeof workers === 'number') for (let i = 0; i < n; i++) processes.push(spawnWorker(coordinator.url, extra, backend));
    else await spawnTree(coordinator.url, workers, processes, backend);
    const run: TrainingRun = await coordinator.done;
    const { pretrainSteps, steps } = equivalenceRun(preset, batchSize).schedule;
    expect(run.round).toBe(pretrainSteps + 2 * steps);
    expect(rounds.map((r) => r.phase).join('')).toBe('D'.repeat(pretrainSteps) + 'DG'.repeat(steps));
    expect(
      rounds.map((r) => r.used?.length),
      JSON.stringify(lines.slice(0, 20)),
    ).toEqual(rounds.map(() => n));
    if (typeof workers === 'number') {
      // Workers on the coordinator's machine answer through shared memory unless told not to, from
      // the second round at the latest (the first may be sent before the worker took the offer).
      const viaShared = extra.includes('--no-shared-memory') ? 0 : n;
      expect(rounds.slice(1).map((r) => r.viaSharedMemory)).toEqual(rounds.slice(1).map(() => viaShared));
    }
    expectIdentical(run.store.params, reference.store.params, 'parameter');
    for (const g of ['G', 'D'] as const) {
      expect(run.store.adam[g].t).toBe(reference.store.adam[g].t);
      expectIdentical(
        new Map([...run.store.adam[g].slots].map(([k, s]) => [k, s.m])),
        new Map([...reference.store.adam[g].slots].map(([k, s]) => [k, s.m])),
        `adam ${g} m`,
      );
      expectIdentical(
        new Map([...run.store.adam[g].slots].map(([k, s]) => [k, s.v])),
        new Map([...reference.store.adam[g].slots].map(([k, s]) => [k, s.v])),
        `adam ${g} v`,
      );
    }
    expectIdentical(run.store.average?.values, reference.store.average?.values, 'average');
    // And training did move the parameters (and the average) away from where they started.
    const p = getPreset(preset);
    const initial = initParams(p, 11);
    startFromData(p, initial, meanImage(await loadDataset({ split: 'train', dir: TEST_DATA })));
    for (const group of ['g/', 'd/']) {
      const name = [...initial.keys()].find((k) => k.startsWith(group) && k.endsWith('kernel')) as string;
      expect(sameBytes(reference.store.params.get(name), initial.get(name)), name).toBe(false);
    }
    const gKernel = [...initial.keys()].find((k) => k.startsWith('g/') && k.endsWith('kernel')) as string;
    expect(sameBytes(reference.store.average?.values.get(gKernel), initial.get(gKernel))).toBe(false);
  } finally {
    await coordinator.close();
    for (const w of processes) if (w.exitCode === null) w.kill();
    await Promise.all(processes.map(exited));
  }
}
