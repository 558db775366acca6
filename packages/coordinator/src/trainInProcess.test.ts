import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@ganfleet/shared/log';
import { selectBackend } from '@ganfleet/shared/backends';
import { sameBytes } from '../../../tests/helpers/bytes.js';
import { runSettings } from './settings.js';
import { trainInProcess } from './trainInProcess.js';

const TEST_DATA = new URL('../../../tests/fixtures/mnist-small', import.meta.url).pathname;

const config = (seed: number, microBatches = 1) => ({
  settings: runSettings({ seed, batchSize: 8, schedule: { pretrainSteps: 3, dStepsPerG: 2, steps: 3 }, sampleEvery: 0, dataDir: TEST_DATA }),
  microBatches,
  log: createLogger({ level: 'silent' }),
});

describe('trainInProcess', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });
  afterAll(async () => {
    await selectBackend('cpu');
  });

  it('same seed, data and backend give the same parameters; another seed does not', async () => {
    const a = await trainInProcess(config(5));
    const b = await trainInProcess(config(5));
    const c = await trainInProcess(config(6));
    expect(a.round).toBe(3 + 3 * 3);
    for (const [name, values] of a.store.params) expect(sameBytes(b.store.params.get(name), values), name).toBe(true);
    expect(sameBytes(c.store.params.get('g/dense1/kernel'), a.store.params.get('g/dense1/kernel'))).toBe(false);
    expect(a.store.adam.D.t).toBe(3 + 3 * 2);
    expect(a.store.adam.G.t).toBe(3);
  });
});
