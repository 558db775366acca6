import { describe, expect, it } from 'vitest';
import { Rng } from '@ganfleet/shared/data';
import { robustAggregate } from './aggregation.js';

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
