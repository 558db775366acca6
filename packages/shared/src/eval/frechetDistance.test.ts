import { describe, expect, it } from 'vitest';
import { Rng } from '../data/index.js';
import { frechetDistance } from './frechetDistance.js';
import type { GaussianStats } from './gaussianStats.js';

const stats = (mean: number[], cov: ArrayLike<number>): GaussianStats => ({
  n: 100,
  dim: mean.length,
  mean: Float64Array.from(mean),
  cov: Float64Array.from(cov),
});

/** Q diag(d) Q^T, Q orthogonal. */
function rotated(q: Float64Array, d: number[]): Float64Array {
  const dim = d.length;
  const out = new Float64Array(dim * dim);
  for (let i = 0; i < dim; i++) {
    for (let j = 0; j < dim; j++) {
      let sum = 0;
      for (let k = 0; k < dim; k++) sum += (q[i * dim + k] as number) * (d[k] as number) * (q[j * dim + k] as number);
      out[i * dim + j] = sum;
    }
  }
  return out;
}

/** An orthogonal matrix: Gram-Schmidt on random vectors. */
function rotation(dim: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  const q = new Float64Array(dim * dim);
  for (let c = 0; c < dim; c++) {
    const v = Float64Array.from({ length: dim }, () => rng.normal());
    for (let p = 0; p < c; p++) {
      let dot = 0;
      for (let i = 0; i < dim; i++) dot += (v[i] as number) * (q[i * dim + p] as number);
      for (let i = 0; i < dim; i++) v[i] = (v[i] as number) - dot * (q[i * dim + p] as number);
    }
    const norm = Math.hypot(...v);
    for (let i = 0; i < dim; i++) q[i * dim + c] = (v[i] as number) / norm;
  }
  return q;
}

describe('frechetDistance', () => {
  it('is zero for identical Gaussians', () => {
    const cov = rotated(rotation(5, 1), [3, 2, 1, 0.5, 0]);
    expect(Math.abs(frechetDistance(stats([1, 2, 3, 4, 5], cov), stats([1, 2, 3, 4, 5], cov)))).toBeLessThan(1e-9);
  });

  it('matches the closed form for diagonal covariances: sum (mu1 - mu2)^2 + (sqrt s1 - sqrt s2)^2', () => {
    // Means differ by (1, -2, 0): 5; variances 4 vs 1, 9 vs 9, 0 vs 16: (2-1)^2 + 0 + 4^2 = 17.
    const a = stats([1, 0, 3], [4, 0, 0, 0, 9, 0, 0, 0, 0]);
    const b = stats([0, 2, 3], [1, 0, 0, 0, 9, 0, 0, 0, 16]);
    expect(frechetDistance(a, b)).toBeCloseTo(22, 10);
    expect(frechetDistance(b, a)).toBeCloseTo(22, 10);
  });

  it('matches the closed form for commuting (same eigenvectors) 64-d covariances', () => {
    const dim = 64;
    const q = rotation(dim, 7);
    const rng = new Rng(3);
    const d1 = Array.from({ length: dim }, () => rng.uniform() * 4);
    const d2 = Array.from({ length: dim }, (_, i) => (i % 5 === 0 ? 0 : rng.uniform() * 4));
    const mean1 = Array.from({ length: dim }, () => rng.normal());
    const mean2 = Array.from({ length: dim }, () => rng.normal());
    let expected = 0;
    for (let i = 0; i < dim; i++)
      expected += ((mean1[i] as number) - (mean2[i] as number)) ** 2 + (Math.sqrt(d1[i] as number) - Math.sqrt(d2[i] as number)) ** 2;
    // Zero eigenvalues come out as +-1e-14, and their square roots as 1e-7: hence 5 digits.
    expect(frechetDistance(stats(mean1, rotated(q, d1)), stats(mean2, rotated(q, d2)))).toBeCloseTo(expected, 5);
  });

  it('matches Tr(I + S - 2 S^(1/2)) = sum (1 - sqrt(l))^2 against the identity', () => {
    const dim = 32;
    const rng = new Rng(11);
    const d = Array.from({ length: dim }, () => rng.uniform() * 9);
    const identity = Float64Array.from({ length: dim * dim }, (_, i) => (i % (dim + 1) === 0 ? 1 : 0));
    const zeros = new Array<number>(dim).fill(0);
    const expected = d.reduce((sum, l) => sum + (1 - Math.sqrt(l)) ** 2, 0);
    expect(frechetDistance(stats(zeros, identity), stats(zeros, rotated(rotation(dim, 5), d)))).toBeCloseTo(expected, 8);
  });
});
