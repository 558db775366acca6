/* Connection set-up: a worker says hello, the coordinator welcomes or refuses it. */
import { WIRE_DTYPES, type EncodedTensors, type WireDtype } from './codec.js';
import { GanError, type GanErrorCode } from './errors.js';
import { MAX_NAME_LENGTH, MAX_TEXT_LENGTH, badMessage, checkOneOf, type Fields } from './fields.js';
import { type SharedOffer, readSharedOffer } from './sharedMemory.js';
import { PROTOCOL_VERSION } from './version.js';

/** Worker → coordinator, first message on a worker connection. */
export interface Hello {
  type: 'hello';
  version: number;
  /** A worker computes one slot per round; a relay (ganfleet relay) passes rounds on to its own workers and answers with sums. */
  role: PeerRole;
  /** tfjs backend name, e.g. 'tensorflow', 'wasm', 'cpu'. */
  backend: string;
  /** Human-readable device description for logs. */
  device: string;
  capabilities: {
    /** Encodings the worker can decode, in preference order. */
    wireDtypes: WireDtype[];
    /** It can map memory shared with a parent on its machine (link/sharedRegion.ts). */
    sharedMemory?: boolean;
  };
}

export type PeerRole = 'worker' | 'relay';

export const PEER_ROLES: readonly PeerRole[] = ['worker', 'relay'];

/** Everything about a run a worker needs before its first round. */
export interface RunDescriptor {
  runId: string;
  preset: string;
  /** D's target for real images: 1, or less with one-sided label smoothing. */
  realLabel: number;
  /** The worker must hold the same data set (checked by fingerprint) or say DATASET_MISMATCH. */
  dataset: { name: string; count: number; fingerprint: string };
  /** Encoding of every tensor set on this connection, chosen from hello.capabilities.wireDtypes. */
  wireDtype: WireDtype;
  /**
   * How relays send their children's gradient sums up: absent, exactly (float64 and what it cannot
   * hold), so that a tree trains the flat run's parameters bit for bit; 'float32', each sum rounded
   * once to float32: half the bytes up, results that depend on the tree (by float32 roundings).
   */
  relaySums?: 'float32';
}

/** RunSettings.relaySums: how relays send sums up (see RunDescriptor.relaySums). */
export type RelaySums = 'exact' | 'float32';
export const RELAY_SUMS: readonly RelaySums[] = ['exact', 'float32'];

/** Coordinator → worker, accepts a hello and ships the full parameter set. */
export interface Welcome {
  type: 'welcome';
  workerId: string;
  run: RunDescriptor;
  params: EncodedTensors;
  /** The round the worker joins at. */
  round: number;
  /** Memory to exchange round frames through, for a worker on this machine that can map it. */
  shared?: SharedOffer;
}

/** Coordinator → worker (or client), rejects a hello/fetchGenerator; the connection then closes. */
export interface Refuse {
  type: 'refuse';
  code: GanErrorCode;
  reason: string;
}

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
    role: f.oneOf('role', PEER_ROLES),
    backend: f.string('backend', MAX_NAME_LENGTH),
    device: f.string('device', MAX_NAME_LENGTH),
    capabilities: f.map('capabilities', (c) => {
      const sharedMemory = c.optionalBoolean('sharedMemory');
      return {
        wireDtypes: c.array('wireDtypes', WIRE_DTYPES.length, (v, p) => checkOneOf(v, p, WIRE_DTYPES)),
        ...(sharedMemory !== undefined ? { sharedMemory } : {}),
      };
    }),
  };
}

/** Label smoothing takes at most half: a target in [0.5, 1]. */
function realLabel(r: Fields): number {
  const v = r.number('realLabel', 0.5);
  if (v > 1) throw badMessage(r.at('realLabel'), `expected at most 1, got ${v}`);
  return v;
}

export function readWelcome(f: Fields): Welcome {
  const shared = f.optionalMap('shared', readSharedOffer);
  return {
    type: 'welcome',
    workerId: f.string('workerId', MAX_NAME_LENGTH),
    run: f.map('run', (r) => ({
      runId: r.string('runId', MAX_NAME_LENGTH),
      preset: r.string('preset', MAX_NAME_LENGTH),
      realLabel: realLabel(r),
      dataset: r.map('dataset', (d) => ({
        name: d.string('name', MAX_NAME_LENGTH),
        count: d.integer('count', 0),
        fingerprint: d.string('fingerprint', MAX_NAME_LENGTH),
      })),
      wireDtype: r.oneOf('wireDtype', WIRE_DTYPES),
      ...(r.optional('relaySums') !== undefined ? { relaySums: r.oneOf('relaySums', ['float32'] as const) } : {}),
    })),
    params: f.tensors('params'),
    round: f.integer('round', 0),
    ...(shared ? { shared } : {}),
  };
}

export function readRefuse(f: Fields): Refuse {
  return { type: 'refuse', code: f.errorCode('code'), reason: f.string('reason', MAX_TEXT_LENGTH) };
}
