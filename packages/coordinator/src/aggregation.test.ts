import { describe, expect, it } from 'vitest';
import { Rng } from '@ganfleet/shared/data';
import { MAX_COMBINED_GRADIENT, robustAggregate, weightedMean } from './aggregation.js';

describe('robust aggregation', () => {
  const rng = new Rng(8);
  const parts = Array.from({ length: 5 }, () => rng.fillNormal(new Float32Array(300)));

  /** Per coordinate: sort the values, cut `cut` at each end, average the rest (the definition, written plainly). */
  const expected = (cut: number) =>
    Float32Array.from({ length: 300 }, (_, i) => {
      const column = parts.map((p) => p[i] as number).sort((a, b) => a - b);
      const kept = column.slice(cut, column.length - cut);
      return kept.reduce((a, b) => a + b, 0) / kept.length;
    });

  it('median and trimmed mean follow their definitions', () => {
    const out = new Float32Array(300);
    robustAggregate('median', parts, out, 0);
    expect(Array.from(out)).toEqual(Array.from(expected(2)));
    robustAggregate('trimmed-mean', parts, out, 1);
    out.forEach((v, i) => expect(v).toBeCloseTo(expected(1)[i] as number, 6));
  });

  it('keeps every coordinate within the honest range with one contribution of 1e30 among five', () => {
    const attacked = [...parts.slice(0, 4), new Float32Array(300).fill(1e30)];
    const out = new Float32Array(300);
    for (const mode of ['median', 'trimmed-mean'] as const) {
      robustAggregate(mode, attacked, out, 1);
      out.forEach((v, i) => {
        const honest = parts.slice(0, 4).map((p) => p[i] as number);
        expect(v).toBeGreaterThanOrEqual(Math.min(...honest) - 1e-6);
        expect(v).toBeLessThanOrEqual(Math.max(...honest) + 1e-6);
      });
    }
  });
});

describe('weightedMean', () => {
  it("is the float64 sum in the parts' order, rounded to float32, for any number of parts (groups of four summed ahead)", () => {
    const rng = new Rng(12);
    for (const n of [1, 2, 4, 5, 9]) {
      const parts = Array.from({ length: n }, () => rng.fillNormal(new Float32Array(257)));
      const weights = parts.map((_, j) => 3 + j);
      const total = weights.reduce((a, b) => a + b, 0);
      const out = new Float32Array(257);
      expect(weightedMean(parts, weights, total, out, new Float64Array(257))).toBe(true);
      out.forEach((v, i) => {
        let acc = 0;
        parts.forEach((p, j) => (acc += (weights[j] as number) * (p[i] as number)));
        expect(v, `${n} parts, index ${i}`).toBe(Math.fround(acc / total));
      });
    }
  });

  it('reports a mean that is not finite or beyond the limit', () => {
    const out = new Float32Array(2);
    expect(weightedMean([Float32Array.from([1, NaN])], [1], 1, out)).toBe(false);
    expect(weightedMean([Float32Array.from([1, 3e38]), Float32Array.from([1, 3e38])], [1, 1], 2, out)).toBe(false);
    expect(weightedMean([Float32Array.from([1, MAX_COMBINED_GRADIENT])], [1], 1, out)).toBe(true);
  });
});
