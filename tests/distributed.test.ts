import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, meanImage } from '@ganfleet/shared/data';
import { getPreset, initParams, startFromData } from '@ganfleet/shared/model';
import { probeNativeAddon, selectBackend } from '@ganfleet/shared/backends';
import { type RoundLog, type TrainingRun, startCoordinator, trainInProcess } from '@ganfleet/coordinator';
import { sameBytes } from './helpers/bytes.js';
import { TEST_DATA, exited, loopback, memoryLogger, spawnWorker, testRun } from './helpers/cluster.js';

/**
 * The test that proves the design: N worker processes with batch b give the same parameters
 * as the single-process trainer accumulating N micro-batches of b. Both sides run the same
 * wasm kernels on the same inputs, and the coordinator sums in slot order, so equality is exact.
 */
// 4 pre-training rounds + 4 iterations of (D, G): 12 rounds across the boundary.
const settings = (preset: string, batchSize: number) => testRun({ preset, seed: 11, batchSize, pretrainSteps: 4, steps: 4 });

/** Byte-for-byte equality of every array of two parameter maps (and the same names). */
function expectIdentical(got: ReadonlyMap<string, Float32Array> | undefined, expected: ReadonlyMap<string, Float32Array> | undefined, what: string): void {
  expect(got, what).toBeDefined();
  expect([...(got as ReadonlyMap<string, Float32Array>).keys()], what).toEqual([...(expected as ReadonlyMap<string, Float32Array>).keys()]);
  for (const [name, values] of expected ?? []) expect(sameBytes(got?.get(name), values), `${what} ${name}`).toBe(true);
}

/**
 * One comparison: the in-process trainer in this process (on the backend selected in beforeAll)
 * against n worker processes on `backend`, with `extra` worker flags.
 */
async function expectDistributedEqualsInProcess(preset: string, batchSize: number, n: number, backend: string, extra: string[] = []): Promise<void> {
  const { log } = memoryLogger('warn');
  const reference = await trainInProcess({ settings: settings(preset, batchSize), microBatches: n, log });
  const coordinator = await startCoordinator({ settings: { ...settings(preset, batchSize), minWorkers: n }, server: loopback(), log });
  const rounds: RoundLog[] = [];
  coordinator.events.on('round', (r) => rounds.push(r));
  const workers = Array.from({ length: n }, () => spawnWorker(coordinator.url, extra, backend));
  try {
    const run: TrainingRun = await coordinator.done;
    expect(run.round).toBe(12);
    expect(rounds.map((r) => r.phase).join('')).toBe('DDDDDGDGDGDG');
    expect(rounds.every((r) => r.slots === n)).toBe(true);
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
    for (const w of workers) if (w.exitCode === null) w.kill();
    await Promise.all(workers.map(exited));
  }
}

describe('distributed training equals in-process gradient accumulation', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });
  afterAll(async () => {
    await selectBackend('cpu');
  });

  for (const [preset, batchSize, workerCounts] of [
    ['mlp', 16, [1, 2, 3]],
    ['conv', 4, [2]],
  ] as const) {
    for (const n of workerCounts) {
      it(`${preset}, ${n} worker(s): parameters, Adam state and the averaged generator`, async () => {
        await expectDistributedEqualsInProcess(preset, batchSize, n, 'wasm');
      });
    }
  }

  it('float16 on the wire: half the bytes, parameters within a stated tolerance of the float32 reference', async () => {
    const { log } = memoryLogger('warn');
    const reference = await trainInProcess({ settings: settings('mlp', 16), microBatches: 2, log });
    const coordinator = await startCoordinator({ settings: { ...settings('mlp', 16), minWorkers: 2, wireDtype: 'float16' }, server: loopback(), log });
    const rounds: RoundLog[] = [];
    coordinator.events.on('round', (r) => rounds.push(r));
    const workers = [spawnWorker(coordinator.url), spawnWorker(coordinator.url)];
    try {
      const run = await coordinator.done;
      let diff = 0;
      let norm = 0;
      for (const [name, expected] of reference.store.params) {
        const got = run.store.params.get(name) as Float32Array;
        for (let i = 0; i < got.length; i++) {
          diff += ((got[i] as number) - (expected[i] as number)) ** 2;
          norm += (expected[i] as number) ** 2;
        }
      }
      const relL2 = Math.sqrt(diff / norm);
      // Workers see float16-rounded parameters and send float16 gradients (~3 significant
      // digits); Adam normalises gradient magnitudes, so after 12 rounds the drift stays small.
      expect(relL2).toBeGreaterThan(0);
      expect(relL2).toBeLessThan(RELL2_FLOAT16);
      const perRound = rounds.slice(1).reduce((n, r) => n + (r.bytesIn ?? 0) + (r.bytesOut ?? 0), 0) / (rounds.length - 1);
      const float32Minimum = 4 * 2 * (559632 + 533505); // per round, 2 workers: one network down, the other up (mlp)
      expect(perRound / float32Minimum).toBeGreaterThan(0.45);
      expect(perRound / float32Minimum).toBeLessThan(0.55);
    } finally {
      await coordinator.close();
      for (const w of workers) if (w.exitCode === null) w.kill();
      await Promise.all(workers.map(exited));
    }
  });
});

/** Measured 2026-11-27: 5.7e-4 after these 12 rounds; the bound leaves room for other seeds and backends. */
const RELL2_FLOAT16 = 5e-3;

const nativeAddon = await probeNativeAddon();
if (!nativeAddon.available) console.warn(`distributed training on native: SKIPPED, the addon is not built here (${nativeAddon.why})`);

/**
 * The same on the native backend (wasm with the addon's kernels), where the addon is built (CI
 * builds it): the reference runs the kernels with 1 thread in this process, the workers with
 * their default (the machine's cores) or 3 threads; results must not depend on the thread count.
 */
describe.skipIf(!nativeAddon.available)(
  `distributed training equals in-process gradient accumulation on native${nativeAddon.available ? '' : ` (SKIPPED: ${nativeAddon.why})`}`,
  () => {
    beforeAll(async () => {
      const info = await selectBackend('native');
      expect(info.name).toBe('native');
    });
    afterAll(async () => {
      await selectBackend('cpu');
    });

    it('conv, 2 workers (default threads): parameters, Adam state and the averaged generator', async () => {
      await expectDistributedEqualsInProcess('conv', 4, 2, 'native');
    });

    it('mlp, 1 worker with 3 threads: parameters, Adam state and the averaged generator', async () => {
      await expectDistributedEqualsInProcess('mlp', 16, 1, 'native', ['--threads', '3']);
    });
  },
);
