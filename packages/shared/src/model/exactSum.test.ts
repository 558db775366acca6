import { describe, expect, it } from 'vitest';
import { Rng } from '../data/index.js';
import { type SumTerm, addToExpansion, meanOfTerms, roundExpansion, sumTerms, twoProduct } from './exactSum.js';
import { batchNormSums, poolBatchNormSums } from './batchNormStats.js';

/*
 * The independent computation: every value here is a multiple of 2^-149 (float32's smallest
 * step, and products of float32 values with integers), so scaled by 2^149 it is an integer and
 * BigInt adds it exactly; Number() of a BigInt rounds to nearest, ties to even.
 */
const SCALE = 2 ** 149;
const big = (x: number): bigint => BigInt(x * SCALE);
const rounded = (s: bigint): number => Number(s) / SCALE;

/** float32 values over many binades, so that float64 additions are often inexact. */
function wideValues(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * 2 ** Math.round(rng.uniform() * 120 - 60));
}

function exactSums(terms: readonly SumTerm[], n: number): bigint[] {
  return Array.from({ length: n }, (_, i) =>
    terms.reduce((acc, t) => acc + BigInt(t.weight) * big(t.values[i] as number) + (t.rest?.get(i) ?? []).reduce((a, c) => a + big(c), 0n), 0n),
  );
}

describe('exact summation', () => {
  const rng = new Rng(21);
  const n = 400;

  it('rounds the exact sum once, and its rest holds exactly what float64 could not', () => {
    for (const count of [1, 2, 3, 4, 5, 9]) {
      const terms = Array.from({ length: count }, (_, j) => ({ values: wideValues(rng, n), weight: 1 + 7 * j }));
      const sum = new Float64Array(n);
      const rest = sumTerms(terms, sum);
      const exact = exactSums(terms, n);
      let inexact = 0;
      for (let i = 0; i < n; i++) {
        const s = exact[i] as bigint;
        expect(sum[i], `${count} terms, index ${i}`).toBe(rounded(s));
        const left = (rest.get(i) ?? []).reduce((a, c) => a + big(c), 0n);
        expect(big(sum[i] as number) + left).toBe(s);
        if (left !== 0n) inexact++;
      }
      // The test data must reach the slow path to test it.
      if (count > 1) expect(inexact).toBeGreaterThan(0);
    }
  });

  it('gives the same bits however the terms are grouped (a relay tree against a flat sum)', () => {
    const terms = Array.from({ length: 7 }, (_, j) => ({ values: wideValues(rng, n), weight: 64 + j }));
    const flat = new Float64Array(n);
    const flatRest = sumTerms(terms, flat);
    const partial = (group: SumTerm[]): SumTerm => {
      const values = new Float64Array(n);
      const rest = sumTerms(group, values);
      return { values, weight: 1, rest };
    };
    // Depth 2 with uneven fan-outs: ((0,1,2),(3)),((4,5),6).
    const tree = [partial([partial(terms.slice(0, 3)), partial(terms.slice(3, 4))]), partial([partial(terms.slice(4, 6)), terms[6] as SumTerm])];
    const grouped = new Float64Array(n);
    const groupedRest = sumTerms(tree, grouped);
    expect(Array.from(grouped)).toEqual(Array.from(flat));
    // The rest's components are not unique, their exact sum is.
    const exactRest = (rest: Map<number, number[]>) => Array.from({ length: n }, (_, i) => (rest.get(i) ?? []).reduce((a, c) => a + big(c), 0n));
    expect(exactRest(groupedRest)).toEqual(exactRest(flatRest));
  });

  it('meanOfTerms is float32(float64(exact sum) / total), with the limit checked', () => {
    for (const count of [1, 2, 3, 5]) {
      const terms = Array.from({ length: count }, (_, j) => ({ values: wideValues(rng, n), weight: 2 + j }));
      const out = new Float32Array(n);
      expect(meanOfTerms(terms, 9, out, Infinity, new Float64Array(n))).toBe(true);
      exactSums(terms, n).forEach((s, i) => expect(out[i], `${count} terms, index ${i}`).toBe(Math.fround(rounded(s) / 9)));
    }
    // Two relays' sums, each with the rest float64 could not hold: the mean of the exact total.
    const partial = (j: number): SumTerm => {
      const values = new Float64Array(n);
      const rest = sumTerms(
        [0, 1, 2].map((k) => ({ values: wideValues(rng, n), weight: 3 + j + k })),
        values,
      );
      expect(rest.size).toBeGreaterThan(0);
      return { values, weight: 1, rest };
    };
    const relays = [partial(0), partial(1)];
    const out = new Float32Array(n);
    expect(meanOfTerms(relays, 7, out, Infinity, new Float64Array(n))).toBe(true);
    exactSums(relays, n).forEach((s, i) => expect(out[i], `relays, index ${i}`).toBe(Math.fround(rounded(s) / 7)));
    expect(meanOfTerms([{ values: Float32Array.from([1, 3e38]), weight: 2 }], 1, new Float32Array(2), 1e18, new Float64Array(2))).toBe(false);
    expect(meanOfTerms([{ values: Float32Array.from([1, NaN]), weight: 1 }], 1, new Float32Array(2), 1e18, new Float64Array(2))).toBe(false);
  });

  it('rounds half-way expansions to even unless a lower component breaks the tie', () => {
    expect(roundExpansion([2 ** -53, 1])).toBe(1);
    expect(roundExpansion([2 ** -100, 2 ** -53, 1])).toBe(1 + 2 ** -52);
    expect(roundExpansion([-(2 ** -100), 2 ** -53, 1 + 2 ** -52])).toBe(1 + 2 ** -52);
    const partials: number[] = [];
    for (const x of [1e100, 1, -1e100, 2 ** -60]) addToExpansion(partials, x);
    expect(roundExpansion(partials)).toBe(1 + 2 ** -60);
  });

  it('twoProduct splits a product exactly', () => {
    for (let k = 0; k < 200; k++) {
      const a = Math.fround(rng.normal() * 1e3) * 64;
      const b = Math.fround(rng.normal());
      const [p, e] = twoProduct(a, b);
      expect(big(p) + big(e)).toBe((big(a) * big(b)) / BigInt(SCALE));
    }
  });

  it('batch-norm sums pool to the same statistics however the batches are grouped', () => {
    const channels = 16;
    const batches = [5, 64, 7, 64].map((samples) => ({
      samples,
      stats: Float32Array.from({ length: 2 * channels }, (_, i) => (i < channels ? rng.normal() * 300 : rng.uniform() * 1e-3)),
    }));
    const total = batches.reduce((t, b) => t + b.samples, 0);
    const flat = poolBatchNormSums(
      batches.map((b) => batchNormSums(b.samples, b.stats)),
      channels,
      total,
    );
    const group = (bs: typeof batches): SumTerm => {
      const values = new Float64Array(2 * channels);
      const rest = sumTerms(
        bs.map((b) => batchNormSums(b.samples, b.stats)),
        values,
      );
      return { values, weight: 1, rest };
    };
    const grouped = poolBatchNormSums([group(batches.slice(0, 3)), group(batches.slice(3))], channels, total);
    expect(Array.from(grouped)).toEqual(Array.from(flat));
  });
});
