import { afterAll, beforeAll, describe, it } from 'vitest';
import { Rng } from '@ganfleet/shared/data';
import { selectBackend } from '@ganfleet/shared/backends';
import { killWorkerMidRun, testRun } from '../helpers/cluster.js';

/** The long fault soak (`npm run test:soak`, also in CI): 20 kill -9 runs at random moments. */
beforeAll(async () => {
  await selectBackend('wasm');
});
afterAll(async () => {
  await selectBackend('cpu');
});

describe('worker faults, soaked', () => {
  it('kill -9 of a worker at random points in 20 runs: every run applies each round exactly once, parameters finite', async () => {
    const rng = new Rng(2027);
    for (let runIndex = 0; runIndex < 20; runIndex++)
      await killWorkerMidRun(rng, { ...testRun({ seed: 21 + runIndex, batchSize: 8, steps: 40 }), minWorkers: 2 });
  }, 900_000);
});
