/*
 * Tensor sets on the wire: a JSON-able manifest plus one buffer of concatenated
 * little-endian values, the same split as tfjs io encodeWeights/decodeWeights.
 * float16 halves parameter/gradient traffic at ~3 significant digits. Each float16 tensor is
 * scaled by a power of two that puts its largest magnitude in [2^14, 2^15), so that tiny values
 * (a generator's gradients at initialisation are mostly below float16's 2^-14) keep their digits
 * instead of flushing to zero, and large ones cannot overflow.
 */
import { GanError } from './errors.js';

export type WireDtype = 'float32' | 'float16';

export const WIRE_DTYPES: readonly WireDtype[] = ['float32', 'float16'];

export interface TensorSpec {
  name: string;
  shape: number[];
  dtype: WireDtype;
  /** float16 only (and there always): the wire holds value × 2^log2Scale. */
  log2Scale?: number;
}

/**
 * The range of log2Scale: 14 - ⌊log2 m⌋ for a largest magnitude m across float32's finite
 * values, 2^-149 to just under 2^128.
 */
export const LOG2_SCALE_RANGE: readonly [number, number] = [14 - 127, 14 + 149];

export interface NamedTensor {
  name: string;
  shape: number[];
  values: Float32Array;
}

export interface EncodedTensors {
  manifest: TensorSpec[];
  data: Uint8Array;
}

export interface DecodeOptions {
  /** Names and shapes, in order, that the manifest must match exactly (dtype is the sender's choice). */
  expected?: readonly Pick<TensorSpec, 'name' | 'shape'>[];
}

const BYTES_PER_VALUE: Record<WireDtype, number> = { float32: 4, float16: 2 };

// float32 tensors are copied/viewed as raw host-order bytes, which equals the wire order only here.
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function requireLittleEndianHost(): void {
  if (!HOST_IS_LITTLE_ENDIAN) throw new GanError('INTERNAL', 'the tensor codec requires a little-endian host');
}

function badTensor(message: string): GanError {
  return new GanError('BAD_TENSOR', message);
}

function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** Validates one manifest entry (from an untrusted source) and returns its element count. */
function checkSpec(spec: unknown, where: string): number {
  if (typeof spec !== 'object' || spec === null) throw badTensor(`${where}: not an object`);
  const { name, shape, dtype } = spec as Record<string, unknown>;
  if (typeof name !== 'string' || name.length === 0) throw badTensor(`${where}: name must be a non-empty string`);
  if (!Array.isArray(shape)) throw badTensor(`${where} "${name}": shape must be an array`);
  let count = 1;
  for (const dim of shape as unknown[]) {
    if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0) {
      throw badTensor(`${where} "${name}": shape dimensions must be non-negative integers, got ${String(dim)}`);
    }
    count *= dim;
  }
  if (typeof dtype !== 'string' || !(WIRE_DTYPES as readonly string[]).includes(dtype)) {
    throw badTensor(`${where} "${name}": dtype must be one of ${WIRE_DTYPES.join('/')}, got ${String(dtype)}`);
  }
  const { log2Scale } = spec as Record<string, unknown>;
  if (dtype === 'float32' && log2Scale !== undefined) throw badTensor(`${where} "${name}": log2Scale is for float16 only`);
  const [min, max] = LOG2_SCALE_RANGE;
  if (dtype === 'float16' && (typeof log2Scale !== 'number' || !Number.isInteger(log2Scale) || log2Scale < min || log2Scale > max)) {
    throw badTensor(`${where} "${name}": float16 needs an integer log2Scale in [${min}, ${max}], got ${String(log2Scale)}`);
  }
  return count;
}

/** Concatenates `tensors` into one fresh little-endian buffer, converting to `dtype`. */
export function encodeTensors(tensors: readonly NamedTensor[], dtype: WireDtype = 'float32'): EncodedTensors {
  return encodeWith(tensors, dtype, (bytes) => new Uint8Array(bytes));
}

/**
 * `encodeTensors` into a growable scratch buffer owned by the encoder, so that steady-state
 * encodes of same-sized sets touch no fresh memory (first-touch page faults of a new 13 MB
 * buffer cost several times the copy itself). The returned `data` aliases the scratch and is
 * valid only until this encoder's next `encode`: hand it to `encodeMessage` (msgpack copies
 * it while packing) before encoding again. Use one encoder per buffer that must coexist.
 */
export class TensorEncoder {
  private scratch = new Uint8Array(0);

  encode(tensors: readonly NamedTensor[], dtype: WireDtype = 'float32'): EncodedTensors {
    return encodeWith(tensors, dtype, (bytes) => {
      if (bytes > this.scratch.byteLength) this.scratch = new Uint8Array(bytes);
      return this.scratch.subarray(0, bytes);
    });
  }
}

/** Validates `tensors`, then writes them into `alloc(total)`, every byte of which is overwritten. */
function encodeWith(tensors: readonly NamedTensor[], dtype: WireDtype, alloc: (bytes: number) => Uint8Array): EncodedTensors {
  requireLittleEndianHost();
  const bytesPerValue = BYTES_PER_VALUE[dtype];
  const manifest: TensorSpec[] = [];
  const names = new Set<string>();
  let total = 0;
  tensors.forEach((t, i) => {
    const spec: TensorSpec = { name: t.name, shape: [...t.shape], dtype, ...(dtype === 'float16' ? { log2Scale: log2ScaleFor(t.values) } : {}) };
    const count = checkSpec(spec, `tensor ${i}`);
    if (count !== t.values.length) {
      throw badTensor(`tensor "${t.name}": shape ${formatShape(t.shape)} needs ${count} values, got ${t.values.length}`);
    }
    if (names.has(t.name)) throw badTensor(`duplicate tensor name "${t.name}"`);
    names.add(t.name);
    manifest.push(spec);
    total += count * bytesPerValue;
  });

  const data = alloc(total);
  let offset = 0;
  tensors.forEach(({ values }, t) => {
    if (dtype === 'float32') {
      data.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), offset);
    } else {
      // The float32 bits as integers (no float round trip per value), written as whole halves:
      // `data` starts at an even byte offset (the allocators above start at 0) and every value
      // takes 2 bytes.
      const bits = new Int32Array(values.buffer, values.byteOffset, values.length);
      const out = new Uint16Array(data.buffer, data.byteOffset + offset, values.length);
      const k = manifest[t]!.log2Scale!;
      for (let i = 0; i < bits.length; i++) out[i] = float16BitsOf(scaleBits(bits[i]!, k));
    }
    offset += values.length * bytesPerValue;
  });
  return { manifest, data };
}

/**
 * Validates `enc` completely, then returns its tensors. float32 values at a 4-aligned
 * offset are zero-copy views that alias `enc.data`; misaligned ones (msgpack hands out
 * Buffer slices at arbitrary offsets) and float16 ones are copied once.
 */
export function decodeTensors(enc: EncodedTensors, opts: DecodeOptions = {}): NamedTensor[] {
  return decodeWith(enc, opts, (_name, count) => new Float32Array(count));
}

/**
 * `decodeTensors` that copies (misaligned float32, and float16) into arrays it keeps per tensor
 * name and reuses while the name's element count stays the same (a different count reallocates),
 * so steady-state decodes touch no fresh memory. Returned `values` may alias those arrays and are
 * valid only until this decoder's next `decode`. It retains one array per distinct name it has
 * copied, so give untrusted input an `expected` set (which bounds the names), and use separate
 * decoders for sets whose results must coexist. Aligned float32 stays zero-copy, as in `decodeTensors`.
 */
export class TensorDecoder {
  private readonly arrays = new Map<string, Float32Array>();

  decode(enc: EncodedTensors, opts: DecodeOptions = {}): NamedTensor[] {
    return decodeWith(enc, opts, (name, count) => {
      let out = this.arrays.get(name);
      if (out?.length !== count) {
        out = new Float32Array(count);
        this.arrays.set(name, out);
      }
      return out;
    });
  }
}

/** Validates `enc` completely before `alloc` (the destination of any copy) is first called. */
function decodeWith(enc: EncodedTensors, opts: DecodeOptions, alloc: (name: string, count: number) => Float32Array): NamedTensor[] {
  requireLittleEndianHost();
  if (typeof enc !== 'object' || enc === null) throw badTensor('encoded tensors must be an object');
  const { manifest, data } = enc as Partial<Record<keyof EncodedTensors, unknown>>;
  if (!Array.isArray(manifest)) throw badTensor('manifest must be an array');
  if (!(data instanceof Uint8Array)) throw badTensor('data must be a Uint8Array');

  const names = new Set<string>();
  const offsets: number[] = [];
  let offset = 0;
  (manifest as unknown[]).forEach((spec, i) => {
    const count = checkSpec(spec, `manifest[${i}]`);
    const { name, dtype } = spec as TensorSpec;
    if (names.has(name)) throw badTensor(`duplicate tensor name "${name}"`);
    names.add(name);
    offsets.push(offset);
    offset += count * BYTES_PER_VALUE[dtype];
    // Checked as we go so absurd shapes fail here rather than in an allocation.
    if (offset > data.byteLength) {
      throw badTensor(`manifest describes more than the ${data.byteLength} data bytes (at "${name}")`);
    }
  });
  if (offset !== data.byteLength) {
    throw badTensor(`manifest describes ${offset} bytes but data has ${data.byteLength}`);
  }
  const specs = manifest as TensorSpec[];
  if (opts.expected) checkExpected(specs, opts.expected);

  return specs.map((spec, i) => {
    const start = offsets[i]!;
    const count = spec.shape.reduce((a, b) => a * b, 1);
    return { name: spec.name, shape: [...spec.shape], values: readValues(data, start, count, spec, () => alloc(spec.name, count)) };
  });
}

function checkExpected(specs: readonly TensorSpec[], expected: readonly Pick<TensorSpec, 'name' | 'shape'>[]): void {
  if (specs.length !== expected.length) {
    throw badTensor(`expected ${expected.length} tensors, got ${specs.length}`);
  }
  specs.forEach((spec, i) => {
    const want = expected[i]!;
    if (spec.name !== want.name) throw badTensor(`tensor ${i}: expected "${want.name}", got "${spec.name}"`);
    const same = spec.shape.length === want.shape.length && spec.shape.every((d, j) => d === want.shape[j]);
    if (!same) {
      throw badTensor(`tensor "${spec.name}": expected shape ${formatShape(want.shape)}, got ${formatShape(spec.shape)}`);
    }
  });
}

/** The values at `start`: a view when float32 and 4-aligned, else a copy into `dest()` (of length `count`). */
function readValues(data: Uint8Array, start: number, count: number, spec: TensorSpec, dest: () => Float32Array): Float32Array {
  if (spec.dtype === 'float16') {
    const table = float16Table();
    // A power of two: each product is exact.
    const unscale = 2 ** -spec.log2Scale!;
    const out = dest();
    if ((data.byteOffset + start) % 2 === 0) {
      const halves = new Uint16Array(data.buffer, data.byteOffset + start, count);
      for (let i = 0; i < count; i++) out[i] = table[halves[i]!]! * unscale;
    } else {
      for (let i = 0; i < count; i++) out[i] = table[data[start + 2 * i]! | (data[start + 2 * i + 1]! << 8)]! * unscale;
    }
    return out;
  }
  const byteOffset = data.byteOffset + start;
  if (byteOffset % 4 === 0) return new Float32Array(data.buffer, byteOffset, count);
  const out = dest();
  new Uint8Array(out.buffer, out.byteOffset, count * 4).set(data.subarray(start, start + count * 4));
  return out;
}

/** Throws NON_FINITE naming the first tensor and flat index holding NaN or ±Infinity. */
export function assertFinite(tensors: readonly NamedTensor[], what: string): void {
  for (const { name, values } of tensors) {
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      // x - x is 0 for every finite x and NaN for NaN/±Infinity; cheaper than Number.isFinite here.
      if (v - v !== 0) throw new GanError('NON_FINITE', `${what}: tensor "${name}" has ${v} at index ${i}`);
    }
  }
}

/** 14 - ⌊log2 m⌋ for the largest finite magnitude m of `values` (0 when all are zero or non-finite). */
function log2ScaleFor(values: Float32Array): number {
  const bits = new Int32Array(values.buffer, values.byteOffset, values.length);
  // For non-negative floats the bit patterns order as the values do.
  let max = 0;
  for (let i = 0; i < bits.length; i++) {
    const abs = bits[i]! & 0x7fffffff;
    if (abs > max && abs < 0x7f800000) max = abs;
  }
  if (max === 0) return 0;
  const exp = max >>> 23;
  // A float32 subnormal has no implicit bit: its leading mantissa bit gives the binade.
  const floorLog2 = exp !== 0 ? exp - 127 : 31 - Math.clz32(max) - 149;
  return 14 - floorLog2;
}

const scratchF32 = new Float32Array(1);
const scratchI32 = new Int32Array(scratchF32.buffer);

/**
 * The float32 bits of (the float32 with `bits`) × 2^k, k from log2ScaleFor. For normal values
 * that is k added to the exponent field; one that would drop below float32's normal range ends
 * far below float16's smallest value, so it becomes a signed zero.
 */
function scaleBits(bits: number, k: number): number {
  const exp = (bits >>> 23) & 0xff;
  if (exp === 0xff) return bits;
  if (exp !== 0) return exp + k > 0 ? bits + k * 0x800000 : bits & 0x80000000;
  // Zero or a float32 subnormal (rare; only tensors of subnormals scale them up): by arithmetic.
  scratchI32[0] = bits;
  scratchF32[0] = scratchF32[0]! * 2 ** k;
  return scratchI32[0]!;
}

/**
 * IEEE 754 binary16 bits nearest to the float32 with these `bits` (round half to even); overflow
 * gives ±Infinity, NaN stays NaN. Exported for its tests.
 */
export function float16BitsOf(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const abs = bits & 0x7fffffff;
  // The common case, a result in the normal range [2^-14, 65504]: adding 0xfff plus the kept
  // lowest bit rounds the 13 dropped bits half to even, a carry moving into the exponent as it
  // should; then the exponent is rebased from 127 to 15.
  if (abs >= 0x38800000 && abs < 0x477ff000) return sign | (((abs + 0xfff + ((abs >>> 13) & 1)) >>> 13) - ((127 - 15) << 10));
  const exp32 = abs >>> 23;
  const mant = abs & 0x7fffff;
  if (exp32 === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  if (abs >= 0x477ff000) return sign | 0x7c00;
  // Below the normal range: a subnormal half, or zero; below 2^-25 everything rounds to zero
  // (2^-25 itself is a tie that goes to even zero).
  const exp16 = exp32 - 127 + 15;
  if (exp16 < -10) return sign;
  // Shift the mantissa, implicit bit included, down to the 2^-24 grid.
  const full = mant | 0x800000;
  const shift = 14 - exp16;
  const half = 1 << (shift - 1);
  const rem = full & ((1 << shift) - 1);
  let m = full >>> shift;
  if (rem > half || (rem === half && (m & 1) !== 0)) m++; // may carry into the smallest normal: still correct
  return sign | m;
}

let halfTable: Float32Array | undefined;

/** All 65536 binary16 values as float32, built on first float16 decode. */
function float16Table(): Float32Array {
  if (halfTable) return halfTable;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) table[h] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) table[h] = mant !== 0 ? NaN : sign * Infinity;
    else table[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  halfTable = table;
  return table;
}
