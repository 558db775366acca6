/*
 * Tensor sets on the wire: a manifest (name, shape, dtype, byte offset) beside raw little-endian
 * values, the split of tfjs io's encodeWeights/decodeWeights. Every tensor starts at a multiple of
 * TENSOR_ALIGNMENT bytes, so that a received frame is read in place: float32 values are views of
 * it, never copies. float16 halves the bytes at ~3 significant digits (see float16.ts).
 */
import { GanError } from './errors.js';
import { float16BitsOf, float16Table, log2ScaleFor, scaleBits } from './float16.js';

/** How parameters and gradients travel, as a worker and the coordinator agree in the handshake. */
export type WireDtype = 'float32' | 'float16';

export const WIRE_DTYPES: readonly WireDtype[] = ['float32', 'float16'];

/** Every dtype a tensor set may hold: float64 only in a relay's sums (exact partial sums, see decodeSums). */
export type TensorDtype = WireDtype | 'float64';

export const TENSOR_DTYPES: readonly TensorDtype[] = ['float32', 'float16', 'float64'];

/** Where tensors start in a tensor body: a cache line, so views of them are aligned for any element type. */
export const TENSOR_ALIGNMENT = 64;

export interface TensorSpec {
  name: string;
  shape: number[];
  dtype: TensorDtype;
  /** float16 only (and there always): the wire holds value × 2^log2Scale. */
  log2Scale?: number;
  /** Where its bytes start in the body, a multiple of TENSOR_ALIGNMENT. */
  offset: number;
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

/** A tensor of sums (a relay's): float64, exact; float32 in a run that lets relays round them (RunDescriptor.relaySums). */
export interface NamedSums {
  name: string;
  shape: number[];
  values: Float64Array | Float32Array;
}

/** A tensor set: its manifest and the bytes its offsets point into (a message's whole body on receipt). */
export interface EncodedTensors {
  manifest: TensorSpec[];
  data: Uint8Array;
}

export interface DecodeOptions {
  /** Names and shapes, in order, that the manifest must match exactly (dtype is the sender's choice). */
  expected?: readonly Pick<TensorSpec, 'name' | 'shape'>[];
}

export const BYTES_PER_VALUE: Record<TensorDtype, number> = { float32: 4, float16: 2, float64: 8 };

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

export const alignUp = (n: number): number => Math.ceil(n / TENSOR_ALIGNMENT) * TENSOR_ALIGNMENT;

/** Validates one manifest entry (from an untrusted source) and returns its element count. */
function checkSpec(spec: unknown, where: string): number {
  if (typeof spec !== 'object' || spec === null) throw badTensor(`${where}: not an object`);
  const { name, shape, dtype, offset } = spec as Record<string, unknown>;
  if (typeof name !== 'string' || name.length === 0) throw badTensor(`${where}: name must be a non-empty string`);
  if (!Array.isArray(shape)) throw badTensor(`${where} "${name}": shape must be an array`);
  let count = 1;
  for (const dim of shape as unknown[]) {
    if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0) {
      throw badTensor(`${where} "${name}": shape dimensions must be non-negative integers, got ${String(dim)}`);
    }
    count *= dim;
  }
  if (!Number.isSafeInteger(count)) throw badTensor(`${where} "${name}": ${formatShape(shape as number[])} has too many values`);
  if (typeof dtype !== 'string' || !(TENSOR_DTYPES as readonly string[]).includes(dtype)) {
    throw badTensor(`${where} "${name}": dtype must be one of ${TENSOR_DTYPES.join('/')}, got ${String(dtype)}`);
  }
  const { log2Scale } = spec as Record<string, unknown>;
  if (dtype !== 'float16' && log2Scale !== undefined) throw badTensor(`${where} "${name}": log2Scale is for float16 only`);
  const [min, max] = LOG2_SCALE_RANGE;
  if (dtype === 'float16' && (typeof log2Scale !== 'number' || !Number.isInteger(log2Scale) || log2Scale < min || log2Scale > max)) {
    throw badTensor(`${where} "${name}": float16 needs an integer log2Scale in [${min}, ${max}], got ${String(log2Scale)}`);
  }
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0 || offset % TENSOR_ALIGNMENT !== 0) {
    throw badTensor(`${where} "${name}": offset must be a non-negative multiple of ${TENSOR_ALIGNMENT}, got ${String(offset)}`);
  }
  return count;
}

/**
 * Places tensors of these names and shapes one after another from `start` (aligned), each at an
 * aligned offset: the manifest (float16 entries get their log2Scale when written) and where the
 * set's bytes end.
 */
export function layoutTensors(specs: readonly Pick<TensorSpec, 'name' | 'shape'>[], dtype: TensorDtype, start = 0): { manifest: TensorSpec[]; end: number } {
  let offset = alignUp(start);
  let end = offset;
  const names = new Set<string>();
  const manifest = specs.map((s, i) => {
    if (names.has(s.name)) throw badTensor(`duplicate tensor name "${s.name}"`);
    names.add(s.name);
    const spec: TensorSpec = { name: s.name, shape: [...s.shape], dtype, ...(dtype === 'float16' ? { log2Scale: 0 } : {}), offset };
    end = offset + checkSpec(spec, `tensor ${i}`) * BYTES_PER_VALUE[dtype];
    offset = alignUp(end);
    return spec;
  });
  return { manifest, end };
}

/**
 * Writes `tensors` (in manifest order) into `body` at the manifest's offsets, converting to its
 * dtype (setting each float16 entry's log2Scale). Padding between tensors is zeroed, so the same
 * tensors always give the same bytes.
 */
export function writeTensors(manifest: TensorSpec[], tensors: readonly (NamedTensor | NamedSums)[], body: Uint8Array): void {
  requireLittleEndianHost();
  if (tensors.length !== manifest.length) throw badTensor(`${tensors.length} tensors for a manifest of ${manifest.length}`);
  let written = manifest[0]?.offset ?? 0;
  manifest.forEach((spec, i) => {
    const { values } = tensors[i] as NamedTensor | NamedSums;
    const count = spec.shape.reduce((a, b) => a * b, 1);
    if (count !== values.length) throw badTensor(`tensor "${spec.name}": shape ${formatShape(spec.shape)} needs ${count} values, got ${values.length}`);
    if ((spec.dtype === 'float64') !== values instanceof Float64Array) throw badTensor(`tensor "${spec.name}": float64 values go in float64 sets only`);
    body.fill(0, written, spec.offset);
    if (spec.dtype !== 'float16' || values instanceof Float64Array) {
      body.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), spec.offset);
    } else {
      // The float32 bits as integers (no float round trip per value), written as whole halves.
      const k = log2ScaleFor(values);
      spec.log2Scale = k;
      const bits = new Int32Array(values.buffer, values.byteOffset, values.length);
      const out = new Uint16Array(body.buffer, body.byteOffset + spec.offset, values.length);
      for (let j = 0; j < bits.length; j++) out[j] = float16BitsOf(scaleBits(bits[j]!, k));
    }
    written = spec.offset + count * BYTES_PER_VALUE[spec.dtype];
  });
}

/** A tensor set in a fresh buffer of its own: layoutTensors then writeTensors. */
export function encodeTensors(tensors: readonly (NamedTensor | NamedSums)[], dtype: TensorDtype = 'float32'): EncodedTensors {
  const { manifest, end } = layoutTensors(tensors, dtype);
  const data = new Uint8Array(end);
  writeTensors(manifest, tensors, data);
  return { manifest, data };
}

/**
 * Validates `enc` completely (every tensor inside `data`, none overlapping another of the set,
 * names and shapes as expected), then returns its tensors: float32 ones are views of `data`
 * (aligned by construction; copied only if the buffer itself is misaligned), float16 ones are
 * converted into fresh arrays.
 */
export function decodeTensors(enc: EncodedTensors, opts: DecodeOptions = {}): NamedTensor[] {
  const { specs, data } = checkSet(enc, opts);
  return specs.map((spec) => {
    if (spec.dtype === 'float64') throw badTensor(`tensor "${spec.name}": float64 is for sums only`);
    return { name: spec.name, shape: [...spec.shape], values: readValues(data, elements(spec), spec) };
  });
}

/**
 * A relay's sums, validated as decodeTensors does: float64 (or float32, rounded, see
 * RunDescriptor.relaySums; the caller says whether it allows them); views of `data` where aligned.
 */
export function decodeSums(enc: EncodedTensors, opts: DecodeOptions & { float32?: boolean } = {}): NamedSums[] {
  const { specs, data } = checkSet(enc, opts);
  return specs.map((spec) => {
    if (spec.dtype === 'float32' && opts.float32) return { name: spec.name, shape: [...spec.shape], values: readValues(data, elements(spec), spec) };
    if (spec.dtype !== 'float64') throw badTensor(`tensor "${spec.name}": sums travel as float64${opts.float32 ? ' or float32' : ''}, got ${spec.dtype}`);
    const count = elements(spec);
    const byteOffset = data.byteOffset + spec.offset;
    const values =
      byteOffset % 8 === 0 ? new Float64Array(data.buffer, byteOffset, count) : new Float64Array(data.slice(spec.offset, spec.offset + count * 8).buffer);
    return { name: spec.name, shape: [...spec.shape], values };
  });
}

const elements = (spec: TensorSpec): number => spec.shape.reduce((a, b) => a * b, 1);

/** Every tensor of the set inside `data`, none overlapping another, names and shapes as expected. */
function checkSet(enc: EncodedTensors, opts: DecodeOptions): { specs: TensorSpec[]; data: Uint8Array } {
  requireLittleEndianHost();
  if (typeof enc !== 'object' || enc === null) throw badTensor('encoded tensors must be an object');
  const { manifest, data } = enc as Partial<Record<keyof EncodedTensors, unknown>>;
  if (!Array.isArray(manifest)) throw badTensor('manifest must be an array');
  if (!(data instanceof Uint8Array)) throw badTensor('data must be a Uint8Array');

  const names = new Set<string>();
  const ranges: [number, number, string][] = [];
  (manifest as unknown[]).forEach((spec, i) => {
    const count = checkSpec(spec, `manifest[${i}]`);
    const { name, dtype, offset } = spec as TensorSpec;
    if (names.has(name)) throw badTensor(`duplicate tensor name "${name}"`);
    names.add(name);
    const end = offset + count * BYTES_PER_VALUE[dtype];
    // Checked as we go so absurd shapes fail here rather than in an allocation.
    if (end > data.byteLength) throw badTensor(`tensor "${name}" ends at byte ${end}, beyond the ${data.byteLength} data bytes`);
    ranges.push([offset, end, name]);
  });
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    const [prev, cur] = [ranges[i - 1]!, ranges[i]!];
    if (cur[0] < prev[1]) throw badTensor(`tensors "${prev[2]}" and "${cur[2]}" overlap`);
  }
  const specs = manifest as TensorSpec[];
  if (opts.expected) checkExpected(specs, opts.expected);
  return { specs, data };
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

function readValues(data: Uint8Array, count: number, spec: TensorSpec): Float32Array {
  const byteOffset = data.byteOffset + spec.offset;
  if (spec.dtype === 'float16') {
    const table = float16Table();
    // A power of two: each product is exact.
    const unscale = 2 ** -spec.log2Scale!;
    const out = new Float32Array(count);
    if (byteOffset % 2 === 0) {
      const halves = new Uint16Array(data.buffer, byteOffset, count);
      for (let i = 0; i < count; i++) out[i] = table[halves[i]!]! * unscale;
    } else {
      const at = spec.offset;
      for (let i = 0; i < count; i++) out[i] = table[data[at + 2 * i]! | (data[at + 2 * i + 1]! << 8)]! * unscale;
    }
    return out;
  }
  if (byteOffset % 4 === 0) return new Float32Array(data.buffer, byteOffset, count);
  const out = new Float32Array(count);
  new Uint8Array(out.buffer).set(data.subarray(spec.offset, spec.offset + count * 4));
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

export { float16BitsOf } from './float16.js';
