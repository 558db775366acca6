import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../backends/index.js';
import type { Dataset } from '../data/index.js';
import { initParams } from './params.js';
import { getPreset } from './presets.js';
import { Trainer } from './trainer.js';

// A tiny synthetic data set: the trainer only gathers rows of it.
const dataset: Dataset = {
  name: 'synthetic',
  split: 'train',
  count: 32,
  height: 28,
  width: 28,
  images: Float32Array.from({ length: 32 * 784 }, (_, i) => Math.sin(i) * 0.9),
  labels: new Uint8Array(32),
  fingerprint: 'synthetic',
};

describe('Trainer', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });
  afterAll(async () => {
    await selectBackend('cpu');
  });

  for (const name of ['mlp', 'conv']) {
    it(`${name}: leaves no tensor behind over many steps`, async () => {
      const preset = getPreset(name);
      const trainer = new Trainer(preset, dataset);
      trainer.update(initParams(preset, 1));
      const indices = Uint32Array.from([1, 5, 9, 30]);
      const step = async (i: number) => {
        const phase = i % 2 ? 'G' : 'D';
        const r = await trainer.compute({ phase, batchSize: 4, seed: i, ...(phase === 'D' ? { indices } : {}) });
        trainer.update(new Map([...r.grads].slice(0, 2))); // replacing parameters must free the old tensors
        return r;
      };
      await step(0);
      await step(1);
      const before = tf.memory().numTensors;
      for (let i = 2; i < 22; i++) await step(i);
      expect(tf.memory().numTensors).toBe(before);
      trainer.dispose();
      expect(tf.memory().numTensors).toBe(before - preset.params.length);
    });
  }

  it('gives the same gradients for the same request and different ones for another seed', async () => {
    const preset = getPreset('mlp');
    const trainer = new Trainer(preset, dataset);
    trainer.update(initParams(preset, 2));
    const req = { phase: 'G' as const, batchSize: 8, seed: 42 };
    const a = await trainer.compute(req);
    const b = await trainer.compute(req);
    const c = await trainer.compute({ ...req, seed: 43 });
    const first = (r: typeof a) => r.grads.get('g/dense1/kernel') as Float32Array;
    expect(first(a)).toEqual(first(b));
    expect(first(a)).not.toEqual(first(c));
    expect([...a.grads.keys()]).toEqual(preset.params.filter((s) => s.network === 'G').map((s) => s.name));
    trainer.dispose();
  });
});
