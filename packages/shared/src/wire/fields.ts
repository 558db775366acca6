/*
 * Hand-written validation of decoded msgpack maps. Every failure is a BAD_MESSAGE
 * naming the field path (e.g. `round.update.manifest[2].shape[0]`), so a peer's bug
 * can be diagnosed from the coordinator log alone.
 */
import { LOG2_SCALE_RANGE, TENSOR_DTYPES, type EncodedTensors, type TensorSpec } from './codec.js';
import { GanError, isGanErrorCode, type GanErrorCode } from './errors.js';

/** Identifiers: ids, names, backends, tensor names, hyper-parameter keys and string values. */
export const MAX_NAME_LENGTH = 256;
/** Free text: reasons, error messages, tokens. */
export const MAX_TEXT_LENGTH = 4096;
const MAX_TENSORS = 4096;
const MAX_RANK = 8;
export const UINT32_MAX = 0xffffffff;

export function badMessage(path: string, problem: string): GanError {
  return new GanError('BAD_MESSAGE', `${path}: ${problem}`);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v instanceof Uint8Array) return `${v.byteLength} bytes`;
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  return typeof v;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/**
 * Reads the fields of one map. Each accessor marks its key as known; `readMap` then
 * rejects any key nobody asked for, so typos and fields from other versions fail loudly.
 */
export class Fields {
  private readonly known = new Set<string>();

  constructor(
    private readonly values: Record<string, unknown>,
    readonly path: string,
    /** A tensor frame's body, which the header's manifests point into. */
    private readonly body?: Uint8Array,
  ) {}

  /** The raw value, or undefined when absent (an explicit msgpack undefined counts as absent). */
  optional(key: string): unknown {
    this.known.add(key);
    return Object.hasOwn(this.values, key) ? this.values[key] : undefined;
  }

  required(key: string): unknown {
    const v = this.optional(key);
    if (v === undefined) throw badMessage(this.at(key), 'missing');
    return v;
  }

  at(key: string): string {
    return `${this.path}.${key}`;
  }

  /** A non-empty string of at most `maxLength` UTF-16 units. */
  string(key: string, maxLength: number): string {
    return checkString(this.required(key), this.at(key), maxLength);
  }

  optionalString(key: string, maxLength: number): string | undefined {
    const v = this.optional(key);
    return v === undefined ? undefined : checkString(v, this.at(key), maxLength, 1);
  }

  integer(key: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
    return checkInteger(this.required(key), this.at(key), min, max);
  }

  optionalInteger(key: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const v = this.optional(key);
    return v === undefined ? undefined : checkInteger(v, this.at(key), min, max);
  }

  optionalBoolean(key: string): boolean | undefined {
    const v = this.optional(key);
    if (v !== undefined && typeof v !== 'boolean') throw badMessage(this.at(key), `expected a boolean, got ${describe(v)}`);
    return v;
  }

  /** A finite number at least `min`. */
  number(key: string, min = -Infinity): number {
    const v = this.required(key);
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) {
      throw badMessage(this.at(key), `expected a finite number >= ${min}, got ${describe(v)}`);
    }
    return v;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[]): T {
    return checkOneOf(this.required(key), this.at(key), allowed);
  }

  errorCode(key: string): GanErrorCode {
    const v = this.required(key);
    if (!isGanErrorCode(v)) throw badMessage(this.at(key), `expected an error code, got ${describe(v)}`);
    return v;
  }

  bytes(key: string): Uint8Array {
    return checkBytes(this.required(key), this.at(key));
  }

  optionalBytes(key: string): Uint8Array | undefined {
    const v = this.optional(key);
    return v === undefined ? undefined : checkBytes(v, this.at(key));
  }

  /** An array of at most `maxLength` items, each checked by `item`. */
  array<T>(key: string, maxLength: number, item: (v: unknown, path: string) => T): T[] {
    const v = this.required(key);
    const path = this.at(key);
    if (!Array.isArray(v)) throw badMessage(path, `expected an array, got ${describe(v)}`);
    if (v.length > maxLength) throw badMessage(path, `more than ${maxLength} items`);
    return v.map((x: unknown, i) => item(x, `${path}[${i}]`));
  }

  map<T>(key: string, read: (f: Fields) => T): T {
    return readMap(this.required(key), this.at(key), read);
  }

  /** A tensor set: its manifest here, its bytes in the frame's body (bounds and names are decodeTensors' checks). */
  tensors(key: string): EncodedTensors {
    const set = this.optionalTensors(key);
    if (!set) throw badMessage(this.at(key), 'missing');
    return set;
  }

  optionalTensors(key: string): EncodedTensors | undefined {
    const v = this.optional(key);
    if (v === undefined) return undefined;
    if (!this.body) throw badMessage(this.at(key), 'tensors outside a tensor frame');
    const path = this.at(key);
    if (!Array.isArray(v)) throw badMessage(path, `expected an array, got ${describe(v)}`);
    if (v.length > MAX_TENSORS) throw badMessage(path, `more than ${MAX_TENSORS} items`);
    return { manifest: v.map((x: unknown, i) => readMap(x, `${path}[${i}]`, readSpec)), data: this.body };
  }

  optionalMap<T>(key: string, read: (f: Fields) => T): T | undefined {
    const v = this.optional(key);
    return v === undefined ? undefined : readMap(v, this.at(key), read);
  }

  /** A map with at most `maxKeys` string keys of bounded length, each value checked by `value`. */
  record<T>(key: string, maxKeys: number, value: (v: unknown, path: string) => T): Record<string, T> {
    const v = this.required(key);
    const path = this.at(key);
    if (!isMap(v)) throw badMessage(path, `expected a map, got ${describe(v)}`);
    const entries = Object.entries(v);
    if (entries.length > maxKeys) throw badMessage(path, `more than ${maxKeys} keys`);
    // fromEntries defines own properties, so a "__proto__" key cannot reach the prototype.
    return Object.fromEntries(entries.map(([k, x]) => [checkString(k, `${path} key`, MAX_NAME_LENGTH), value(x, `${path}.${k}`)]));
  }

  unknownKeys(): string[] {
    return Object.keys(this.values).filter((k) => !this.known.has(k));
  }
}

/** Runs `read` over the map `v` and rejects keys it did not read. `body`: the tensor frame's, for its sets. */
export function readMap<T>(v: unknown, path: string, read: (f: Fields) => T, body?: Uint8Array): T {
  if (!isMap(v)) throw badMessage(path, `expected a map, got ${describe(v)}`);
  const fields = new Fields(v, path, body);
  const out = read(fields);
  const extra = fields.unknownKeys();
  if (extra.length > 0) throw badMessage(path, `unexpected field ${JSON.stringify(extra[0])}`);
  return out;
}

export function checkString(v: unknown, path: string, maxLength: number, minLength = 1): string {
  if (typeof v !== 'string') throw badMessage(path, `expected a string, got ${describe(v)}`);
  if (v.length > maxLength) throw badMessage(path, `string longer than ${maxLength}`);
  if (v.length < minLength) throw badMessage(path, 'empty string');
  return v;
}

function checkInteger(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw badMessage(path, `expected an integer in [${min}, ${max}], got ${describe(v)}`);
  }
  return v;
}

export function checkOneOf<T extends string>(v: unknown, path: string, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw badMessage(path, `expected one of ${allowed.join('/')}, got ${describe(v)}`);
  }
  return v as T;
}

/** Returns a plain Uint8Array view (msgpackr yields Buffer slices on Node) without copying. */
function checkBytes(v: unknown, path: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw badMessage(path, `expected binary, got ${describe(v)}`);
  return v.constructor === Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** One manifest entry's structure; offsets, bounds, names and shapes are decodeTensors' checks. */
function readSpec(s: Fields): TensorSpec {
  const spec: TensorSpec = {
    name: s.string('name', MAX_NAME_LENGTH),
    shape: s.array('shape', MAX_RANK, (d, p) => checkInteger(d, p, 0, UINT32_MAX)),
    dtype: s.oneOf('dtype', TENSOR_DTYPES),
    offset: s.integer('offset', 0),
  };
  // Whether it belongs with the dtype is decodeTensors' check.
  const log2Scale = s.optionalInteger('log2Scale', ...LOG2_SCALE_RANGE);
  return log2Scale === undefined ? spec : { ...spec, log2Scale };
}
