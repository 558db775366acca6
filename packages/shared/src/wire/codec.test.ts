import { describe, expect, it } from 'vitest';
import {
  LOG2_SCALE_RANGE,
  assertFinite,
  decodeSums,
  decodeTensors,
  encodeTensors,
  type EncodedTensors,
  float16BitsOf,
  type NamedTensor,
  TENSOR_ALIGNMENT,
  layoutTensors,
} from './codec.js';
import { GanError, type GanErrorCode } from './errors.js';

function expectGanError(fn: () => unknown, code: GanErrorCode, message?: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(GanError);
  expect((thrown as GanError).code).toBe(code);
  if (message) expect((thrown as GanError).message).toMatch(message);
}

const tensors = (): NamedTensor[] => [
  { name: 'g/dense/kernel', shape: [2, 3], values: Float32Array.from([1, -2, 3.5, 0, -0, 1e-30]) },
  { name: 'g/dense/bias', shape: [3], values: Float32Array.from([0.1, 0.2, 0.3]) },
  { name: 'scalar', shape: [], values: Float32Array.from([42]) },
  { name: 'empty', shape: [0, 5], values: new Float32Array(0) },
];

/** Copies `enc.data` so that it starts at `byteOffset` within a bigger buffer. */
function atOffset(enc: EncodedTensors, byteOffset: number): EncodedTensors {
  const backing = new Uint8Array(enc.data.byteLength + byteOffset + 3).fill(0xee);
  backing.set(enc.data, byteOffset);
  return { manifest: enc.manifest, data: backing.subarray(byteOffset, byteOffset + enc.data.byteLength) };
}

/** The binary16 bits the encoder rounds the float32 value x to (before any scaling). */
function float16Bits(x: number): number {
  return float16BitsOf(new Int32Array(Float32Array.from([x]).buffer)[0]!);
}

/** The float32 value of every binary16 bit pattern, via the decoder (unscaled: log2Scale 0). */
function allFloat16Values(): Float32Array {
  const data = new Uint8Array(65536 * 2);
  for (let h = 0; h < 65536; h++) {
    data[2 * h] = h & 0xff;
    data[2 * h + 1] = h >>> 8;
  }
  return decodeTensors({ manifest: [{ name: 'all', shape: [65536], dtype: 'float16', log2Scale: 0, offset: 0 }], data })[0]!.values;
}

describe('encodeTensors/decodeTensors float32', () => {
  it('round-trips names, shapes and exact values', () => {
    const enc = encodeTensors(tensors());
    // Each tensor at the next multiple of 64 bytes: 24 bytes, then 12, then 4, then none.
    const offsets = [0, 64, 128, 192];
    expect(enc.manifest).toEqual(tensors().map(({ name, shape }, i) => ({ name, shape, dtype: 'float32', offset: offsets[i] })));
    expect(enc.data.byteLength).toBe(192);
    // The padding is zero, so the same tensors always give the same bytes.
    expect(enc.data.subarray(24, 64).every((b) => b === 0)).toBe(true);
    const dec = decodeTensors(enc, { expected: tensors() });
    expect(dec).toEqual(tensors());
    expect(Object.is(dec[0]!.values[4], -0)).toBe(true);
  });

  it('writes little-endian bytes', () => {
    const enc = encodeTensors([{ name: 'one', shape: [1], values: Float32Array.from([1]) }]);
    expect([...enc.data]).toEqual([0x00, 0x00, 0x80, 0x3f]);
  });

  it('encodes a Float32Array that is a view into a larger buffer', () => {
    const big = Float32Array.from([9, 1, 2, 9]);
    const enc = encodeTensors([{ name: 'v', shape: [2], values: big.subarray(1, 3) }]);
    expect([...decodeTensors(enc)[0]!.values]).toEqual([1, 2]);
  });

  it('returns zero-copy views when the data is 4-aligned', () => {
    const enc = atOffset(encodeTensors(tensors()), 8);
    const dec = decodeTensors(enc);
    expect(dec[0]!.values.buffer).toBe(enc.data.buffer);
    expect(dec[0]!.values.byteOffset).toBe(8);
  });

  it.each([1, 2, 3, 5])('decodes data at byte offset %i by copying', (offset) => {
    const enc = atOffset(encodeTensors(tensors()), offset);
    const dec = decodeTensors(enc);
    expect(dec).toEqual(tensors());
    expect(dec[0]!.values.buffer).not.toBe(enc.data.buffer);
  });

  it('decodes a Node Buffer slice at an odd offset', () => {
    const enc = encodeTensors(tensors());
    const buf = Buffer.concat([Buffer.from([7]), Buffer.from(enc.data)]).subarray(1);
    expect(buf.byteOffset % 4).not.toBe(0);
    expect(decodeTensors({ manifest: enc.manifest, data: buf })).toEqual(tensors());
  });

  it('handles a 3.3M-value set', () => {
    const n = 3_300_000;
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = Math.sin(i);
    const set: NamedTensor[] = [
      { name: 'w', shape: [n - 100], values: values.subarray(0, n - 100) },
      { name: 'b', shape: [10, 10], values: values.subarray(n - 100) },
    ];
    const enc = encodeTensors(set);
    expect(enc.data.byteLength).toBe(Math.ceil(((n - 100) * 4) / TENSOR_ALIGNMENT) * TENSOR_ALIGNMENT + 400);
    const dec = decodeTensors(atOffset(enc, 1), { expected: set });
    // A plain loop: toEqual on millions of elements takes seconds.
    const mismatches = (a: Float32Array, b: Float32Array): number => a.filter((v, i) => v !== b[i]).length;
    expect(mismatches(dec[0]!.values, set[0]!.values)).toBe(0);
    expect(mismatches(dec[1]!.values, set[1]!.values)).toBe(0);
    const half = decodeTensors(encodeTensors(set, 'float16'));
    expect(Math.abs(half[0]!.values[123_457]! - values[123_457]!)).toBeLessThan(1e-3);
  });
});

describe('decodeSums', () => {
  it('reads float64 sums; float32 ones only where the caller allows them (a run whose relays round their sums)', () => {
    const sums = [{ name: 's', shape: [2], values: Float64Array.from([1 + 2 ** -40, -3]) }];
    expect(decodeSums(encodeTensors(sums, 'float64'))).toEqual(sums);
    const rounded = encodeTensors([{ name: 's', shape: [2], values: Float32Array.from([1, -3]) }], 'float32');
    expect(() => decodeSums(rounded)).toThrow(
      expect.objectContaining({ code: 'BAD_TENSOR', message: expect.stringMatching(/sums travel as float64, got float32/) }),
    );
    const decoded = decodeSums(rounded, { float32: true });
    expect(decoded[0]?.values).toBeInstanceOf(Float32Array);
    expect([...(decoded[0]?.values ?? [])]).toEqual([1, -3]);
    expect(() => decodeSums(encodeTensors([{ name: 's', shape: [2], values: Float32Array.from([1, -3]) }], 'float16'), { float32: true })).toThrow(
      expect.objectContaining({ code: 'BAD_TENSOR', message: expect.stringMatching(/float64 or float32, got float16/) }),
    );
  });
});

describe('layoutTensors', () => {
  it('places every tensor at an aligned offset after `start`, in order, and says where the set ends', () => {
    const { manifest, end } = layoutTensors(
      [
        { name: 'a', shape: [3] },
        { name: 'b', shape: [17] },
        { name: 'c', shape: [0] },
      ],
      'float16',
      100,
    );
    expect(manifest.map((m) => m.offset)).toEqual([128, 192, 256]);
    expect(end).toBe(256);
    expect(manifest.every((m) => m.offset % TENSOR_ALIGNMENT === 0 && m.dtype === 'float16')).toBe(true);
  });
});

describe('decodeTensors validation', () => {
  const good = (): EncodedTensors => encodeTensors(tensors().slice(0, 2));
  const withSpec = (spec: unknown): EncodedTensors => ({ manifest: [spec, good().manifest[1]], data: good().data }) as unknown as EncodedTensors;

  it.each<[string, unknown, RegExp]>([
    ['null', null, /must be an object/],
    ['a manifest that is not an array', { manifest: {}, data: new Uint8Array(0) }, /manifest must be an array/],
    ['data that is not bytes', { manifest: [], data: [1, 2, 3] }, /data must be a Uint8Array/],
    ['data as a Float32Array', { manifest: [], data: new Float32Array(1) }, /data must be a Uint8Array/],
    ['a spec that is not an object', withSpec(7), /manifest\[0\]: not an object/],
    ['an empty name', withSpec({ name: '', shape: [6], dtype: 'float32', offset: 0 }), /name must be a non-empty string/],
    ['a numeric name', withSpec({ name: 3, shape: [6], dtype: 'float32', offset: 0 }), /name must be a non-empty string/],
    ['a shape that is not an array', withSpec({ name: 'k', shape: 6, dtype: 'float32', offset: 0 }), /shape must be an array/],
    ['a negative dimension', withSpec({ name: 'k', shape: [-2, -3], dtype: 'float32', offset: 0 }), /non-negative integers, got -2/],
    ['a fractional dimension', withSpec({ name: 'k', shape: [1.5, 4], dtype: 'float32', offset: 0 }), /got 1.5/],
    ['a NaN dimension', withSpec({ name: 'k', shape: [NaN], dtype: 'float32', offset: 0 }), /got NaN/],
    ['a string dimension', withSpec({ name: 'k', shape: ['6'], dtype: 'float32', offset: 0 }), /got 6/],
    ['an unknown dtype', withSpec({ name: 'k', shape: [6], dtype: 'int32', offset: 0 }), /dtype must be one of float32\/float16/],
    ['a tensor beyond the data', withSpec({ name: 'k', shape: [17], dtype: 'float32', offset: 64 }), /ends at byte 132, beyond the 76 data bytes/],
    ['a huge shape', withSpec({ name: 'k', shape: [2 ** 40, 2 ** 40], dtype: 'float32', offset: 0 }), /too many values/],
    ['a missing offset', withSpec({ name: 'k', shape: [6], dtype: 'float32' }), /offset must be a non-negative multiple of 64/],
    ['a misaligned offset', withSpec({ name: 'k', shape: [6], dtype: 'float32', offset: 4 }), /offset must be a non-negative multiple of 64, got 4/],
    ['overlapping tensors', withSpec({ name: 'k', shape: [17], dtype: 'float32', offset: 0 }), /tensors "k" and "g\/dense\/bias" overlap/],
    ['duplicate names', withSpec({ name: 'g/dense/bias', shape: [6], dtype: 'float32', offset: 0 }), /duplicate tensor name "g\/dense\/bias"/],
  ])('rejects %s', (_, enc, message) => {
    expectGanError(() => decodeTensors(enc as EncodedTensors), 'BAD_TENSOR', message);
  });

  it('rejects a set that differs from the expected names and shapes', () => {
    const expected = tensors().slice(0, 2);
    expectGanError(() => decodeTensors(good(), { expected: expected.slice(0, 1) }), 'BAD_TENSOR', /expected 1 tensors, got 2/);
    expectGanError(
      () => decodeTensors(good(), { expected: [expected[1]!, expected[0]!] }),
      'BAD_TENSOR',
      /tensor 0: expected "g\/dense\/bias", got "g\/dense\/kernel"/,
    );
    expectGanError(
      () => decodeTensors(good(), { expected: [{ name: 'g/dense/kernel', shape: [3, 2] }, expected[1]!] }),
      'BAD_TENSOR',
      /expected shape \[3,2\], got \[2,3\]/,
    );
    expectGanError(
      () => decodeTensors(good(), { expected: [{ name: 'g/dense/kernel', shape: [6] }, expected[1]!] }),
      'BAD_TENSOR',
      /expected shape \[6\], got \[2,3\]/,
    );
  });

  it('accepts either wire dtype against the same expected set', () => {
    const expected = tensors();
    expect(decodeTensors(encodeTensors(expected, 'float16'), { expected })).toHaveLength(4);
  });
});

describe('encodeTensors validation', () => {
  it('rejects values that do not fill the shape', () => {
    expectGanError(() => encodeTensors([{ name: 'k', shape: [2, 2], values: new Float32Array(3) }]), 'BAD_TENSOR', /shape \[2,2\] needs 4 values, got 3/);
  });

  it('rejects duplicate names and bad shapes', () => {
    const t = { name: 'k', shape: [1], values: new Float32Array(1) };
    expectGanError(() => encodeTensors([t, t]), 'BAD_TENSOR', /duplicate tensor name "k"/);
    expectGanError(() => encodeTensors([{ ...t, shape: [-1] }]), 'BAD_TENSOR', /non-negative/);
  });
});

describe('float16', () => {
  it.each([1, 2, 3])('decodes data at byte offset %i (read whole or byte by byte) to the same values', (offset) => {
    const aligned = decodeTensors(encodeTensors(tensors(), 'float16'));
    expect(decodeTensors(atOffset(encodeTensors(tensors(), 'float16'), offset))).toEqual(aligned);
  });

  it.each([
    ['around 1', 0],
    ['beyond float16 (up to 2^40)', 20],
    ["as small as a generator's gradients (2^-50 to 2^-10)", -50],
  ])('round-trips values %s within half-precision error of the tensor scale', (_, lowExponent) => {
    let seed = 12345;
    const random = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
    const values = new Float32Array(20_000);
    for (let i = 0; i < values.length; i++) values[i] = random() * 2 ** (lowExponent + Math.floor(Math.abs(random()) * 40));
    const enc = encodeTensors([{ name: 'v', shape: [values.length], values }], 'float16');
    const k = enc.manifest[0]!.log2Scale!;
    const out = decodeTensors(enc)[0]!.values;
    const max = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    // The largest magnitude lands in [2^14, 2^15): full precision down to 2^-14 of the scaled
    // values, i.e. 29 binades below the largest; below that, float16's subnormal spacing.
    expect(max * 2 ** k).toBeGreaterThanOrEqual(2 ** 14);
    expect(max * 2 ** k).toBeLessThan(2 ** 15);
    for (let i = 0; i < values.length; i++) {
      const x = values[i]!;
      const err = Math.abs(out[i]! - x);
      if (Math.abs(x) * 2 ** k >= 2 ** -14) expect(err).toBeLessThanOrEqual(Math.abs(x) * 2 ** -11);
      else expect(err).toBeLessThanOrEqual(2 ** (-25 - k));
    }
  });

  it('scales each tensor by the power of two that puts its largest finite magnitude in [2^14, 2^15)', () => {
    const scaleOf = (values: number[]): number =>
      encodeTensors([{ name: 'v', shape: [values.length], values: Float32Array.from(values) }], 'float16').manifest[0]!.log2Scale!;
    expect(scaleOf([1, -0.5])).toBe(14);
    expect(scaleOf([0.75, -1.999])).toBe(14);
    expect(scaleOf([-2, 1])).toBe(13);
    expect(scaleOf([3e-7, 1e-9])).toBe(14 + 22); // 3e-7 is in [2^-22, 2^-21)
    expect(scaleOf([65504])).toBe(-1);
    expect(scaleOf([0, -0])).toBe(0);
    expect(scaleOf([Infinity, NaN, 2])).toBe(13);
    expect(scaleOf([1e-45])).toBe(LOG2_SCALE_RANGE[1]); // the smallest float32 subnormal, 2^-149
    expect(scaleOf([3e38])).toBe(LOG2_SCALE_RANGE[0]);
    // Tensors of float32 subnormals and of huge values still round-trip.
    for (const values of [
      [1e-45, -3e-42, 1e-40],
      [3e38, -1e38, 1],
    ]) {
      const out = decodeTensors(encodeTensors([{ name: 'v', shape: [3], values: Float32Array.from(values) }], 'float16'))[0]!.values;
      const max = Math.max(...values.map(Math.abs));
      values.forEach((x, i) => expect(Math.abs(out[i]! - x)).toBeLessThanOrEqual(max * 2 ** -11));
    }
  });

  it.each([
    ['missing', undefined],
    ['not an integer', 1.5],
    ['below the range', LOG2_SCALE_RANGE[0] - 1],
    ['above the range', LOG2_SCALE_RANGE[1] + 1],
  ])('rejects a float16 tensor whose log2Scale is %s', (_, log2Scale) => {
    const data = new Uint8Array(4);
    const spec = { name: 'v', shape: [2], dtype: 'float16' as const, offset: 0, ...(log2Scale === undefined ? {} : { log2Scale }) };
    expectGanError(() => decodeTensors({ manifest: [spec], data }), 'BAD_TENSOR', /log2Scale/);
  });

  it('rejects a log2Scale on a float32 tensor', () => {
    expectGanError(
      () => decodeTensors({ manifest: [{ name: 'v', shape: [1], dtype: 'float32', log2Scale: 0, offset: 0 }], data: new Uint8Array(4) }),
      'BAD_TENSOR',
      /float16 only/,
    );
  });

  it('encodes special values exactly', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff], // largest finite
      [65519, 0x7bff], // below the halfway point to 65536
      [65520, 0x7c00], // halfway: rounds to even, which is Infinity
      [1e6, 0x7c00],
      [-1e6, 0xfc00],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // tie between 0 and the smallest subnormal: even is 0
      [1.5 * 2 ** -25, 0x0001],
      [3 * 2 ** -25, 0x0002], // tie between subnormals 1 and 2: even is 2
      [5 * 2 ** -25, 0x0002], // tie between 2 and 3: even is 2
      [1023.5 * 2 ** -24, 0x0400], // tie between the largest subnormal and smallest normal
      [1e-10, 0x0000],
      [-1e-10, 0x8000],
      [1 + 2 ** -11, 0x3c00], // tie: down to even
      [1 + 3 * 2 ** -11, 0x3c02], // tie: up to even
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
    ];
    for (const [x, bits] of cases) expect([x, float16Bits(x)]).toEqual([x, bits]);
    expect(float16Bits(NaN) & 0x7c00).toBe(0x7c00);
    expect(float16Bits(NaN) & 0x3ff).not.toBe(0);
  });

  it('decodes every bit pattern and re-encodes it to the same bits', () => {
    const all = allFloat16Values();
    expect(all[0x3c00]).toBe(1);
    expect(all[0x7bff]).toBe(65504);
    expect(all[0x0001]).toBe(2 ** -24);
    expect(all[0x03ff]).toBe(1023 * 2 ** -24);
    expect(all[0xfc00]).toBe(-Infinity);
    expect(Number.isNaN(all[0x7e00])).toBe(true);
    expect(Object.is(all[0x8000], -0)).toBe(true);
    for (let h = 0; h < 65536; h++) {
      const bits = float16Bits(all[h]!);
      if (Number.isNaN(all[h])) expect((bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0).toBe(true);
      else if (bits !== h) expect.fail(`0x${h.toString(16)} re-encoded as 0x${bits.toString(16)}`);
    }
  });

  it('picks the nearest half, ties to even, for random float32 inputs', () => {
    const all = allFloat16Values();
    const f32 = new Float32Array(1);
    const u32 = new Uint32Array(f32.buffer);
    let state = 987654321;
    let checked = 0;
    for (let n = 0; n < 50_000; n++) {
      state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
      // Exponents 2^-27..2^15 cover zero-flush, subnormal and normal halves; low mantissa bits make ties rare, so
      // every 8th sample clears them to land exactly on a tie or a representable value.
      const exponent = 127 - 27 + (state % 43);
      const mantissa = n % 8 === 0 ? state & 0x7fe000 : state & 0x7fffff;
      u32[0] = (((state >>> 31) << 31) | (exponent << 23) | mantissa) >>> 0;
      const x = f32[0]!;
      if (Math.abs(x) >= 65504) continue;
      checked++;
      const h = float16Bits(x);
      const mag = h & 0x7fff;
      const err = Math.abs(all[h]! - x);
      for (const nb of [mag - 1, mag + 1]) {
        if (nb < 0 || nb > 0x7bff) continue;
        const other = Math.abs(all[(h & 0x8000) | nb]! - x);
        if (other < err || (other === err && (h & 1) !== 0)) expect.fail(`x=${x} encoded 0x${h.toString(16)}`);
      }
    }
    expect(checked).toBeGreaterThan(45_000);
  });
});

describe('assertFinite', () => {
  it('passes finite tensors and names the first bad value', () => {
    expect(() => assertFinite(tensors(), 'params')).not.toThrow();
    for (const bad of [NaN, Infinity, -Infinity]) {
      const t = tensors();
      t[1]!.values[2] = bad;
      expectGanError(() => assertFinite(t, 'worker 3 grads'), 'NON_FINITE', new RegExp(`^worker 3 grads: tensor "g/dense/bias" has ${bad} at index 2$`));
    }
  });
});
