import { describe, expect, it } from 'vitest';
import { gaussianStats } from './gaussianStats.js';

describe('gaussianStats', () => {
  it('gives the mean and the unbiased covariance computed by hand', () => {
    // Rows (1, 2), (3, 6), (5, 4): mean (3, 4); deviations (-2, -2), (0, 2), (2, 0).
    const s = gaussianStats(Float32Array.from([1, 2, 3, 6, 5, 4]), 3, 2);
    expect(Array.from(s.mean)).toEqual([3, 4]);
    // Sums of products 8, 4, 8 over n - 1 = 2.
    expect(Array.from(s.cov)).toEqual([4, 2, 2, 4]);
  });

  it('rejects data that is not n rows of dim', () => {
    expect(() => gaussianStats(new Float32Array(5), 3, 2)).toThrow(/not 3 rows of 2/);
    expect(() => gaussianStats(new Float32Array(2), 1, 2)).toThrow(/at least 2/);
  });
});
