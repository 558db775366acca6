import { describe, expect, it } from 'vitest';
import { Rng } from '../data/index.js';
import { symmetricEigen } from './symmetricEigen.js';

/** A A^T for a random dim x rank A: symmetric PSD, singular when rank < dim. */
function randomPsd(dim: number, rank: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  const a = Float64Array.from({ length: dim * rank }, () => rng.normal());
  const s = new Float64Array(dim * dim);
  for (let i = 0; i < dim; i++) {
    for (let j = 0; j < dim; j++) {
      let sum = 0;
      for (let k = 0; k < rank; k++) sum += (a[i * rank + k] as number) * (a[j * rank + k] as number);
      s[i * dim + j] = sum;
    }
  }
  return s;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] as number));
  return m;
}

describe('symmetricEigen', () => {
  it('finds the eigenvalues of a 2x2 matrix computed by hand', () => {
    // [[2, 1], [1, 2]]: eigenvalues 1 and 3, eigenvectors (1, -1)/sqrt2 and (1, 1)/sqrt2.
    const { values, vectors } = symmetricEigen([2, 1, 1, 2], 2);
    expect(Array.from(values).sort()).toEqual([expect.closeTo(1, 12), expect.closeTo(3, 12)]);
    const big = (values[0] as number) > (values[1] as number) ? 0 : 1;
    expect(Math.abs(vectors[big] as number)).toBeCloseTo(Math.SQRT1_2, 12);
    expect((vectors[big] as number) * (vectors[2 + big] as number)).toBeCloseTo(0.5, 12);
  });

  for (const [dim, rank] of [
    [64, 64],
    [96, 40],
  ] as const) {
    it(`reconstructs a random ${dim}x${dim} PSD matrix of rank ${rank} with orthonormal vectors`, () => {
      const s = randomPsd(dim, rank, dim + rank);
      const { values, vectors } = symmetricEigen(s, dim);
      const recon = new Float64Array(dim * dim);
      const gram = new Float64Array(dim * dim);
      for (let i = 0; i < dim; i++) {
        for (let j = 0; j < dim; j++) {
          let r = 0;
          let g = 0;
          for (let k = 0; k < dim; k++) {
            r += (vectors[i * dim + k] as number) * (values[k] as number) * (vectors[j * dim + k] as number);
            g += (vectors[k * dim + i] as number) * (vectors[k * dim + j] as number);
          }
          recon[i * dim + j] = r;
          gram[i * dim + j] = g;
        }
      }
      expect(maxAbs(recon.map((v, i) => v - (s[i] as number)))).toBeLessThan(1e-9 * maxAbs(s));
      expect(maxAbs(gram.map((v, i) => v - (i % (dim + 1) === 0 ? 1 : 0)))).toBeLessThan(1e-12);
      // A rank-r Gram matrix has dim - r zero eigenvalues; the trace is the sum of all of them.
      const sorted = Array.from(values).sort((a, b) => a - b);
      expect(maxAbs(sorted.slice(0, dim - rank))).toBeLessThan(1e-9 * maxAbs(s));
      let trace = 0;
      for (let i = 0; i < dim; i++) trace += s[i * dim + i] as number;
      expect(sorted.reduce((a, b) => a + b, 0)).toBeCloseTo(trace, 6);
    });
  }
});
