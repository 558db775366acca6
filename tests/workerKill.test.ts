import { afterAll, beforeAll, describe, it } from 'vitest';
import { Rng } from '@ganfleet/shared/data';
import { selectBackend } from '@ganfleet/shared/backends';
import { faultRun, killWorkerMidRun } from './helpers/cluster.js';

/*
 * kill -9 of worker processes mid-run, the fast suite's two runs (tests/soak/ has twenty). A file
 * of its own so that vitest, which runs files in parallel, not tests, can balance it against the
 * other fault tests in faults.test.ts.
 */
beforeAll(async () => {
  await selectBackend('wasm');
});
afterAll(async () => {
  await selectBackend('cpu');
});

describe('worker killed', () => {
  it('kill -9 of a worker at random points in 2 runs: every run applies each round exactly once, parameters finite', async () => {
    const rng = new Rng(2026);
    for (let runIndex = 0; runIndex < 2; runIndex++) await killWorkerMidRun(rng, faultRun(30, { minWorkers: 2 }));
  });
});
