import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, selectBackend } from '@ganfleet/shared';
import { DEFAULT_ADAM } from './adam.js';
import { trainInProcess } from './trainInProcess.js';

const config = (seed: number, microBatches = 1) => ({
  preset: 'mlp',
  seed,
  batchSize: 8,
  microBatches,
  schedule: { pretrainSteps: 3, dStepsPerG: 2, steps: 3 },
  adam: DEFAULT_ADAM,
  bnMomentum: 0.9,
  sampleEvery: 0,
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
    for (const [name, values] of a.store.params) expect(b.store.params.get(name), name).toEqual(values);
    expect(c.store.params.get('g/dense1/kernel')).not.toEqual(a.store.params.get('g/dense1/kernel'));
    expect(a.store.adam.D.t).toBe(3 + 3 * 2);
    expect(a.store.adam.G.t).toBe(3);
  });

  it('accumulating two micro-batches differs from one (it sees twice the data)', async () => {
    const one = await trainInProcess(config(5, 1));
    const two = await trainInProcess(config(5, 2));
    expect(two.store.params.get('d/dense1/kernel')).not.toEqual(one.store.params.get('d/dense1/kernel'));
  });
});
