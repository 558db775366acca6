import { describe, expect, it } from 'vitest';
import { Rng, getPreset, initParams, specsOf } from '@ganfleet/shared';
import { Adam, type AdamConfig, DEFAULT_ADAM } from './adam.js';
import { ParamStore, poolBatchNormStats } from './paramStore.js';

function moments(values: number[]): [number, number] {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return [mean, values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length];
}

describe('poolBatchNormStats', () => {
  it('equals the statistics of the concatenated batches', () => {
    const rng = new Rng(3);
    const batches = [5, 11, 2].map((n, k) => Array.from({ length: n }, () => rng.normal() * (k + 1) + k));
    const parts = batches.map((b) => {
      const [m, v] = moments(b);
      return { samples: b.length, stats: Float32Array.from([m, v]) };
    });
    const [mean, variance] = moments(batches.flat());
    const pooled = poolBatchNormStats(parts, 1);
    expect(pooled[0]).toBeCloseTo(mean, 5);
    expect(pooled[1]).toBeCloseTo(variance, 4);
  });
});

describe('ParamStore', () => {
  it('gives each network its own learning rate when asked, and the shared one otherwise', () => {
    const preset = getPreset('mlp');
    const rng = new Rng(9);
    const gradsOf = (group: 'G' | 'D') =>
      new Map(specsOf(preset, group).map((s) => [s.name, rng.fillNormal(new Float32Array(s.shape.reduce((a, b) => a * b, 1)))]));
    const dGrads = gradsOf('D');
    const gGrads = gradsOf('G');
    const config = { ...DEFAULT_ADAM, learningRate: 1e-3 };
    const run = (adam: AdamConfig) => {
      const store = new ParamStore(preset, initParams(preset, 1), adam);
      store.apply('D', [{ samples: 4, loss: 0, grads: dGrads }]);
      store.apply('G', [{ samples: 4, loss: 0, grads: gGrads }]);
      return store.params;
    };
    // The reference: one plain Adam per network at the rate it should have.
    const expected = (lrD: number, lrG: number) => {
      const params = initParams(preset, 1);
      new Adam({ ...config, learningRate: lrD }).apply(params, dGrads);
      new Adam({ ...config, learningRate: lrG }).apply(params, gGrads);
      return params;
    };
    const same = (a: Map<string, Float32Array>, b: Map<string, Float32Array>) => [...a].every(([n, v]) => v.every((x, i) => x === b.get(n)?.[i]));
    expect(same(run({ ...config, networkLearningRates: { D: 1e-4 } }), expected(1e-4, 1e-3))).toBe(true);
    expect(same(run({ ...config, networkLearningRates: { G: 3e-3 } }), expected(1e-3, 3e-3))).toBe(true);
    expect(same(run(config), expected(1e-3, 1e-3))).toBe(true);
    expect(same(run(config), expected(1e-4, 1e-3))).toBe(false);
  });
});
