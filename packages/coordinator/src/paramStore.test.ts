import { describe, expect, it } from 'vitest';
import { Rng } from '@ganfleet/shared';
import { poolBatchNormStats } from './paramStore.js';

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
