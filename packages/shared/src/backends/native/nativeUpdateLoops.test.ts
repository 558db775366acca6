import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '../../data/index.js';
import { type AdamStepConstants, jsUpdateLoops, updateLoops, useUpdateLoops } from '../../model/updateLoops.js';
import { NATIVE_ADDON_SPEC, type NativeAddon, probeNativeAddon } from './addon.js';
import { nativeUpdateLoops, useFastestUpdateLoops } from './nativeUpdateLoops.js';

/*
 * The native update loops against the JavaScript ones, bit for bit, on every ISA path this CPU
 * has: values spanning float32's range (subnormals, ±0, near-overflow products), lengths that
 * leave a tail after the vector loop, and steps done in pieces. Skipped, saying so, where the
 * addon is not built (CI builds it).
 */

const probe = await probeNativeAddon();
const title = probe.available
  ? `native update loops (${probe.isa}) against the JavaScript ones`
  : `native update loops: SKIPPED, the addon is not built here: ${probe.why}`;
if (!probe.available) console.warn(title);
const addon = probe.available ? ((await import(NATIVE_ADDON_SPEC)) as NativeAddon) : undefined;

/** Values of every magnitude float32 has, of both signs, with some exact zeros and subnormals. */
function spread(rng: Rng, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rng.uniform();
    const e = Math.floor(rng.uniform() * 60) - 40;
    out[i] = u < 0.03 ? 0 : u < 0.06 ? (rng.uniform() - 0.5) * 1e-40 : (rng.uniform() - 0.5) * 2 ** e * scale;
  }
  return out;
}

const bits = (a: Float32Array | Float64Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.byteLength / 4));

const constants: AdamStepConstants[] = [
  { beta1: 0.5, beta2: 0.999, epsilon: 1e-7, rate: 2e-4 / (1 - 0.5), invC2: 1 / (1 - 0.999) },
  { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, rate: 1e-3 / (1 - 0.9 ** 37), invC2: 1 / (1 - 0.999 ** 37) },
];

describe.skipIf(!addon)(title, () => {
  const isas = addon?.supportedIsas() ?? [];
  const initial = addon?.isa();
  afterAll(() => {
    if (addon && initial) addon.setIsa(initial);
    useUpdateLoops(jsUpdateLoops);
  });

  for (const isa of isas) {
    for (const n of [1, 3, 7, 64, 100_003]) {
      it(`${isa}, ${n} values: Adam, in pieces, equals JavaScript's bit for bit`, () => {
        const a = addon as NativeAddon;
        a.setIsa(isa);
        const native = nativeUpdateLoops(a);
        const rng = new Rng(n);
        for (const c of constants) {
          const g = spread(rng, n);
          const p = spread(rng, n);
          const m = spread(rng, n, 1e-3);
          const v = spread(rng, n, 1e-3).map(Math.abs);
          const [pj, mj, vj] = [p.slice(), m.slice(), v.slice()];
          jsUpdateLoops.adam(c, pj, g, mj, vj, 0, n);
          const cut = Math.floor(n / 3);
          native.adam(c, p, g, m, v, 0, cut);
          // The second piece also writes its new values into a copy (an update's outgoing body).
          const [copy, copyJs] = [new Float32Array(n - cut).fill(7), new Float32Array(n - cut).fill(7)];
          const [pc, mc, vc] = [pj.slice(), mj.slice(), vj.slice()];
          native.adam(c, p, g, m, v, cut, n, copy);
          expect(bits(p)).toEqual(bits(pj));
          expect(bits(m)).toEqual(bits(mj));
          expect(bits(v)).toEqual(bits(vj));
          expect(bits(copy)).toEqual(bits(p.subarray(cut)));
          // And JavaScript's copy, one more step on from its own results, is its parameters too.
          jsUpdateLoops.adam(c, pc, g, mc, vc, cut, n, copyJs);
          expect(bits(copyJs)).toEqual(bits(pc.subarray(cut)));
        }
      });

      it(`${isa}, ${n} values: the average's fold, the mean of two and the sum of squares (float32 and float64) equal JavaScript's bit for bit`, () => {
        const a = addon as NativeAddon;
        a.setIsa(isa);
        const native = nativeUpdateLoops(a);
        const rng = new Rng(1000 + n);
        const p = spread(rng, n);
        const avg = spread(rng, n);
        const avgJs = avg.slice();
        jsUpdateLoops.emaFold(avgJs, p, 0.999, 0, n);
        native.emaFold(avg, p, 0.999, 0, Math.ceil(n / 2));
        native.emaFold(avg, p, 0.999, Math.ceil(n / 2), n);
        expect(bits(avg)).toEqual(bits(avgJs));
        // Workers' float32 gradients weighted by samples, and relays' float64 sums weighted by 1.
        const [x0, x1] = [spread(rng, n, 1e30), spread(rng, n)];
        const [s0, s1] = [Float64Array.from(x0, (x) => x * (1 + 2 ** -40)), Float64Array.from(x1, (x) => x / 3)];
        for (const [a, w0, b, w1, total] of [
          [x0, 32, x1, 32, 64],
          [x0, 17, x0, 0, 17],
          [x0, 3, x1, 61, 64],
          [s0, 1, s1, 1, 256],
          [x1, 32, s0, 1, 96],
        ] as const) {
          const [out, outJs] = [new Float32Array(n), new Float32Array(n)];
          expect(native.meanOfTwo(out, a, w0, b, w1, total)).toBe(jsUpdateLoops.meanOfTwo(outJs, a, w0, b, w1, total));
          expect(bits(out)).toEqual(bits(outJs));
        }
        for (const values of [x0, x1, s0, s1]) {
          const squares = jsUpdateLoops.sumOfSquares(values);
          expect(native.sumOfSquares(values)).toEqual(squares);
          // Copying in the same pass sums the same values: the same result, and the copy is the values bit for bit.
          const [copy, copyJs] = [values.slice().fill(7), values.slice().fill(7)];
          expect(native.sumOfSquares(values, copy)).toEqual(squares);
          expect(jsUpdateLoops.sumOfSquares(values, copyJs)).toEqual(squares);
          expect(bits(copy)).toEqual(bits(values));
          expect(bits(copyJs)).toEqual(bits(values));
        }
      });
    }

    it(`${isa}: checked sums of 1 to 9 float32 and float64 terms equal JavaScript's, with the same inexact coordinates`, () => {
      const a = addon as NativeAddon;
      a.setIsa(isa);
      const native = nativeUpdateLoops(a);
      const rng = new Rng(77);
      const n = 1537;
      for (let k = 1; k <= 9; k++) {
        // Sample-weighted float32 gradients and relays' float64 sums; the spread makes some additions inexact.
        const terms = Array.from({ length: k }, (_, j) =>
          j % 3 === 2 ? { values: Float64Array.from(spread(rng, n), (x) => x * (1 + 2 ** -40)), weight: 1 } : { values: spread(rng, n), weight: 32 + j },
        );
        if (k > 2) (terms[1] as { values: Float32Array | Float64Array }).values[n - 1] = Number.POSITIVE_INFINITY;
        const [acc, accJs] = [new Float64Array(n), new Float64Array(n)];
        const sums = native.sumTerms(terms, acc);
        const sumsJs = jsUpdateLoops.sumTerms(terms, accJs);
        expect(sums.redo).toEqual(sumsJs.redo);
        // One term has no addition to check; more have inexact ones among these values.
        expect(sums.redo.length > 0).toBe(k > 1);
        expect(Array.from(new Uint32Array(acc.buffer))).toEqual(Array.from(new Uint32Array(accJs.buffer)));
        const [out, outJs] = [new Float32Array(n), new Float32Array(n)];
        const mean = native.sumTerms(terms, acc, { out, total: 97 });
        const meanJs = jsUpdateLoops.sumTerms(terms, accJs, { out: outJs, total: 97 });
        expect(mean).toEqual(meanJs);
        expect(bits(out)).toEqual(bits(outJs));
      }
    });

    it(`${isa}: the mean of two and the sum of squares report the largest magnitude, NaN when one is, wherever it is`, () => {
      const a = addon as NativeAddon;
      a.setIsa(isa);
      const native = nativeUpdateLoops(a);
      for (const at of [0, 5, 8, 10]) {
        const x0 = new Float32Array(11).fill(1);
        const x1 = new Float32Array(11).fill(-2);
        x0[at] = 3e38;
        // The sum overflows float32 but not float64: the mean comes back finite.
        expect(native.meanOfTwo(new Float32Array(11), x0, 1, x1, 1, 2)).toBe(Math.fround((3e38 - 2) / 2));
        x1[at] = Number.NaN;
        expect(native.meanOfTwo(new Float32Array(11), x0, 1, x1, 1, 2)).toBeNaN();
        expect(native.sumOfSquares(x1).worst).toBeNaN();
        x1[at] = -Infinity;
        expect(native.meanOfTwo(new Float32Array(11), x0, 1, x1, 1, 2)).toBe(Infinity);
        expect(native.sumOfSquares(x1)).toEqual({ squares: Infinity, worst: Infinity });
        const big = Math.fround(3e38);
        expect(native.sumOfSquares(Float64Array.from(x0))).toEqual({ squares: big * big + 10, worst: big });
      }
    });
  }

  it('refuses arrays of different lengths and outputs overlapping inputs, changing nothing', () => {
    const a = addon as NativeAddon;
    const buf = new Float32Array(16);
    const c = { ...(constants[0] as AdamStepConstants) };
    expect(() => a.adamUpdate({ ...c, p: new Float32Array(4), g: new Float32Array(5), m: new Float32Array(5), v: new Float32Array(5) })).toThrow(RangeError);
    expect(() => a.adamUpdate({ ...c, p: buf.subarray(0, 8), g: buf.subarray(4, 12), m: new Float32Array(8), v: new Float32Array(8) })).toThrow(RangeError);
    expect(() =>
      a.adamUpdate({ ...c, p: new Float32Array(4), g: new Float32Array(4), m: new Float32Array(4), v: new Float32Array(4), from: 3, to: 5 }),
    ).toThrow(RangeError);
    expect(() => a.meanOfTwo({ out: buf.subarray(0, 4), x0: buf.subarray(2, 6), w0: 1, x1: new Float32Array(4), w1: 1, total: 2 })).toThrow(RangeError);
    expect(() => a.emaFold({ avg: new Float32Array(3), p: new Float32Array(4), beta: 0.5 })).toThrow(RangeError);
    expect(() => a.sumTerms({ terms: [{ values: new Float32Array(4), weight: 1 }], out: new Float32Array(5) })).toThrow(RangeError);
    expect(() => a.sumTerms({ terms: [{ values: buf.subarray(0, 4), weight: 1 }], out: buf.subarray(3, 7) })).toThrow(RangeError);
    expect(() => a.sumTerms({ terms: [], acc: new Float64Array(4) })).toThrow(TypeError);
    const adamArrays = () => [new Float32Array(8), new Float32Array(8), new Float32Array(8), new Float32Array(8)] as const;
    expect(() =>
      a.adamUpdate({ ...c, p: new Float32Array(8), g: new Float32Array(8), m: new Float32Array(8), v: new Float32Array(8), copy: buf.subarray(0, 7) }),
    ).toThrow(RangeError);
    const [p8, g8, m8, v8] = adamArrays();
    expect(() => a.adamUpdate({ ...c, p: p8, g: g8, m: m8, v: v8, from: 4, to: 8, copy: p8.subarray(0, 4) })).toThrow(RangeError);
    for (const loops of [nativeUpdateLoops(a), jsUpdateLoops]) {
      expect(() => loops.adam(c, ...adamArrays(), 0, 8, buf.subarray(0, 3))).toThrow(RangeError);
      expect(() => loops.sumOfSquares(new Float32Array(4), buf.subarray(0, 5))).toThrow(TypeError);
      expect(() => loops.sumOfSquares(new Float64Array(4), buf.subarray(0, 4) as unknown as Float64Array)).toThrow(TypeError);
    }
    expect(bits(buf).every((b) => b === 0)).toBe(true);
  });

  it('useFastestUpdateLoops puts the native loops in use, and the JavaScript ones when the addon cannot load', async () => {
    expect(await useFastestUpdateLoops()).toEqual({ loops: `native (${(addon as NativeAddon).isa()})` });
    expect(updateLoops().name).toMatch(/^native/);
    const broken = await useFastestUpdateLoops(() => Promise.reject(new Error('no binary\nmore')));
    expect(broken).toEqual({ loops: 'javascript', why: 'no binary' });
    expect(updateLoops()).toBe(jsUpdateLoops);
  });
});
