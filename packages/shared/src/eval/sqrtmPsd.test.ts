import { describe, expect, it } from 'vitest';
import { Rng } from '../data/index.js';
import { sqrtmPsd } from './sqrtmPsd.js';

function square(r: Float64Array, dim: number): Float64Array {
  const out = new Float64Array(dim * dim);
  for (let i = 0; i < dim; i++) {
    for (let j = 0; j < dim; j++) {
      let sum = 0;
      for (let k = 0; k < dim; k++) sum += (r[i * dim + k] as number) * (r[k * dim + j] as number);
      out[i * dim + j] = sum;
    }
  }
  return out;
}

describe('sqrtmPsd', () => {
  it('takes element-wise roots of a diagonal matrix', () => {
    expect(Array.from(sqrtmPsd([4, 0, 0, 0, 9, 0, 0, 0, 0], 3))).toEqual([2, 0, 0, 0, 3, 0, 0, 0, 0]);
  });

  it('matches the closed form of a 2x2 PSD matrix', () => {
    // sqrt(M) = (M + sqrt(det M) I) / sqrt(tr M + 2 sqrt(det M)) for 2x2 PSD M.
    const m = [5, 2, 2, 1];
    const sd = Math.sqrt(5 * 1 - 2 * 2);
    const t = Math.sqrt(5 + 1 + 2 * sd);
    const expected = [(5 + sd) / t, 2 / t, 2 / t, (1 + sd) / t];
    sqrtmPsd(m, 2).forEach((v, i) => expect(v).toBeCloseTo(expected[i] as number, 12));
  });

  for (const [dim, rank] of [
    [128, 128],
    [64, 20],
  ] as const) {
    it(`squares back to a random ${dim}x${dim} covariance of rank ${rank}`, () => {
      const rng = new Rng(dim * rank);
      const a = Float64Array.from({ length: dim * rank }, () => rng.normal());
      const s = new Float64Array(dim * dim);
      for (let i = 0; i < dim; i++) {
        for (let j = 0; j < dim; j++) {
          let sum = 0;
          for (let k = 0; k < rank; k++) sum += (a[i * rank + k] as number) * (a[j * rank + k] as number);
          s[i * dim + j] = sum;
        }
      }
      const r = sqrtmPsd(s, dim);
      const back = square(r, dim);
      let err = 0;
      let scale = 0;
      for (let i = 0; i < s.length; i++) {
        err = Math.max(err, Math.abs((back[i] as number) - (s[i] as number)));
        scale = Math.max(scale, Math.abs(s[i] as number));
        // The root is symmetric too.
        expect(r[i]).toBe(r[(i % dim) * dim + Math.floor(i / dim)]);
      }
      expect(err).toBeLessThan(1e-9 * scale);
    });
  }
});
