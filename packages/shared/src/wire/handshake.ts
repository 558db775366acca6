/* Connection set-up: a worker says hello, the coordinator welcomes or refuses it. */
import { WIRE_DTYPES, type EncodedTensors, type WireDtype } from './codec.js';
import { GanError, type GanErrorCode } from './errors.js';
import { MAX_NAME_LENGTH, MAX_TEXT_LENGTH, checkOneOf, checkString, readEncodedTensors, type Fields } from './fields.js';
import { PROTOCOL_VERSION } from './version.js';

/** Worker → coordinator, first message on a worker connection. */
export interface Hello {
  type: 'hello';
  version: number;
  token?: string;
  /** tfjs backend name, e.g. 'tensorflow', 'wasm', 'cpu'. */
  backend: string;
  /** Human-readable device description for logs. */
  device: string;
  capabilities: {
    maxBatch?: number;
    /** Encodings the worker can decode, in preference order. */
    wireDtypes: WireDtype[];
  };
}

/** Everything about a run a worker needs before its first round. */
export interface RunDescriptor {
  runId: string;
  preset: string;
  hyper: Record<string, number | string | boolean>;
  /** The worker must hold the same data set (checked by fingerprint) or say DATASET_MISMATCH. */
  dataset: { name: string; count: number; fingerprint: string };
  /** Encoding of every tensor set on this connection, chosen from hello.capabilities.wireDtypes. */
  wireDtype: WireDtype;
}

/** Coordinator → worker, accepts a hello and ships the full parameter set. */
export interface Welcome {
  type: 'welcome';
  workerId: string;
  run: RunDescriptor;
  params: EncodedTensors;
  step: number;
}

/** Coordinator → worker (or client), rejects a hello/fetchGenerator; the connection then closes. */
export interface Refuse {
  type: 'refuse';
  code: GanErrorCode;
  reason: string;
}

const MAX_HYPER_KEYS = 256;

/**
 * Checked before anything else, so that a peer on another protocol version gets
 * VERSION_MISMATCH rather than a BAD_MESSAGE about a field that moved.
 */
export function readVersion(f: Fields): number {
  const version = f.integer('version', 0);
  if (version !== PROTOCOL_VERSION) {
    throw new GanError('VERSION_MISMATCH', `peer speaks protocol ${version}, this build speaks ${PROTOCOL_VERSION}`);
  }
  return version;
}

export function readHello(f: Fields): Hello {
  const version = readVersion(f);
  return {
    type: 'hello',
    version,
    token: f.optionalString('token', MAX_TEXT_LENGTH),
    backend: f.string('backend', MAX_NAME_LENGTH),
    device: f.string('device', MAX_NAME_LENGTH),
    capabilities: f.map('capabilities', (c) => ({
      maxBatch: c.optionalInteger('maxBatch', 1),
      wireDtypes: c.array('wireDtypes', WIRE_DTYPES.length, (v, p) => checkOneOf(v, p, WIRE_DTYPES)),
    })),
  };
}

function hyperValue(v: unknown, path: string): number | string | boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') return checkString(v, path, MAX_NAME_LENGTH, 0);
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  throw new GanError('BAD_MESSAGE', `${path}: expected a finite number, string or boolean`);
}

export function readWelcome(f: Fields): Welcome {
  return {
    type: 'welcome',
    workerId: f.string('workerId', MAX_NAME_LENGTH),
    run: f.map('run', (r) => ({
      runId: r.string('runId', MAX_NAME_LENGTH),
      preset: r.string('preset', MAX_NAME_LENGTH),
      hyper: r.record('hyper', MAX_HYPER_KEYS, hyperValue),
      dataset: r.map('dataset', (d) => ({
        name: d.string('name', MAX_NAME_LENGTH),
        count: d.integer('count', 0),
        fingerprint: d.string('fingerprint', MAX_NAME_LENGTH),
      })),
      wireDtype: r.oneOf('wireDtype', WIRE_DTYPES),
    })),
    params: f.map('params', readEncodedTensors),
    step: f.integer('step', 0),
  };
}

export function readRefuse(f: Fields): Refuse {
  return { type: 'refuse', code: f.errorCode('code'), reason: f.string('reason', MAX_TEXT_LENGTH) };
}
