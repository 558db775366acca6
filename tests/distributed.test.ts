import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getPreset, initParams, selectBackend } from '@ganfleet/shared';
import { DEFAULT_ADAM, startCoordinator, trainInProcess } from '@ganfleet/coordinator';
import { exited, memoryLogger, spawnWorker } from './helpers/cluster.js';

/**
 * The test that proves the design: N worker processes with batch b give the same parameters
 * as the single-process trainer accumulating N micro-batches of b. Both sides run the same
 * wasm kernels on the same inputs, and the coordinator sums in slot order, so equality is exact.
 */
const settings = (preset: string, batchSize: number) => ({
  preset,
  seed: 11,
  batchSize,
  // 4 pre-training rounds + 4 iterations of (D, G): 12 rounds across the boundary.
  schedule: { pretrainSteps: 4, dStepsPerG: 1, steps: 4 },
  adam: DEFAULT_ADAM,
  bnMomentum: 0.9,
  sampleEvery: 0,
});

describe('distributed training equals in-process gradient accumulation', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });
  afterAll(async () => {
    await selectBackend('cpu');
  });

  for (const [preset, batchSize] of [
    ['mlp', 16],
    ['seed', 4],
  ] as const) {
    for (const n of [1, 2, 3]) {
      it(`${preset}, ${n} worker(s)`, async () => {
        const { log } = memoryLogger('warn');
        const reference = await trainInProcess({ ...settings(preset, batchSize), microBatches: n, log });

        const { log: clog, lines } = memoryLogger('info');
        const coordinator = await startCoordinator({
          ...settings(preset, batchSize),
          host: '127.0.0.1',
          port: 0,
          minWorkers: n,
          exitWhenDone: true,
          handshakeTimeoutS: 30,
          log: clog,
        });
        const workers = Array.from({ length: n }, () => spawnWorker(coordinator.url));
        try {
          const run = await coordinator.done;
          expect(run.round).toBe(12);
          const rounds = lines.filter((l) => l.msg === 'round');
          expect(rounds.map((l) => l.phase).join('')).toBe('DDDDDGDGDGDG');
          expect(rounds.every((l) => l.workers === n)).toBe(true);
          for (const [name, expected] of reference.store.params) {
            const got = run.store.params.get(name);
            expect(got, name).toBeDefined();
            // Bit-identical: compare the raw bytes, not approximately.
            expect(Buffer.from((got as Float32Array).buffer).equals(Buffer.from(expected.buffer)), name).toBe(true);
          }
          // And training did move the parameters away from their initial values.
          const initial = initParams(getPreset(preset), 11);
          for (const group of ['g/', 'd/']) {
            const name = [...initial.keys()].find((k) => k.startsWith(group) && k.endsWith('kernel')) as string;
            expect(reference.store.params.get(name), name).not.toEqual(initial.get(name));
          }
        } finally {
          await coordinator.close();
          for (const w of workers) if (w.exitCode === null) w.kill();
          await Promise.all(workers.map(exited));
        }
      });
    }
  }
});
