/* One training round: the coordinator asks for gradients, the worker returns them. */
import type { EncodedTensors } from './codec.js';
import { GanError } from './errors.js';
import { MAX_NAME_LENGTH, badMessage, readMap, type Fields } from './fields.js';
import { PEER_ROLES, type PeerRole } from './handshake.js';

/** Which network's gradients a round asks for. */
export type Phase = 'D' | 'G';

export const PHASES: readonly Phase[] = ['D', 'G'];

/** Coordinator → worker (or relay): compute these slots of round `round`; a worker gets one. */
export interface Round {
  type: 'round';
  round: number;
  phase: Phase;
  batchSize: number;
  /**
   * One uint32 per slot, raw little-endian (see encodeIndices): each seeds its slot's noise (see
   * rng.ts) so results do not depend on which worker ran it.
   */
  seeds: Uint8Array;
  /** Sample indices into the data set, batchSize per slot, as seeds; D phase only. */
  indices?: Uint8Array;
  /** To a relay: how long its parent waits for the reply, so that the relay closes its own round in time. */
  deadlineMs?: number;
  /** Only the parameters changed since this worker last saw them. */
  update?: EncodedTensors;
}

/** Worker → coordinator, the answer to the round with the same number and phase. */
export interface Gradients {
  type: 'gradients';
  round: number;
  phase: Phase;
  samples: number;
  loss: number;
  grads: EncodedTensors;
  /** Batch-norm batch means/variances (G phase). */
  stats?: EncodedTensors;
  computeMs: number;
}

export function readRound(f: Fields): Round {
  const round = f.integer('round', 0);
  const phase = f.oneOf('phase', PHASES);
  const batchSize = f.integer('batchSize', 1);
  const seeds = f.bytes('seeds');
  if (seeds.byteLength === 0 || seeds.byteLength % 4 !== 0) throw badMessage(f.at('seeds'), 'expected one or more uint32');
  const indices = f.optionalBytes('indices');
  if (indices !== undefined) {
    if (phase !== 'D') throw badMessage(f.at('indices'), 'only allowed in the D phase');
    if (indices.byteLength !== seeds.byteLength * batchSize) throw badMessage(f.at('indices'), `expected batchSize (${batchSize}) indices per seed`);
  }
  const deadlineMs = f.optionalInteger('deadlineMs', 1);
  const update = f.optionalTensors('update');
  return { type: 'round', round, phase, batchSize, seeds, indices, deadlineMs, update };
}

/**
 * Relay → its parent, the answer to a round for several slots: the exact sums over its
 * children's samples (see sumTerms) instead of a mean. `samples` 0 means that none of its
 * children answered (the reply then carries no tensors).
 */
export interface Sums {
  type: 'sums';
  round: number;
  phase: Phase;
  samples: number;
  /** The mean loss over the samples. */
  loss: number;
  /** The slots of the round's task that were computed, as indices into its seeds. */
  used: number[];
  /** Per parameter of the phase, float64 (float32, rounded, where the run's relaySums says): Σ over the samples of the gradient. */
  sums?: EncodedTensors;
  /** What float64 could not hold: [tensor index, coordinate, components...] per such coordinate. */
  rest?: RestEntry[];
  /** Batch-norm sums per layer (G phase, see batchNormSums), and their rest. */
  stats?: EncodedTensors;
  statsRest?: RestEntry[];
  /** The slowest child's compute time. */
  computeMs: number;
  /** The relay's own side of the round, for its parent's status: arrival to reply, bytes to and from its children. */
  relay?: { roundMs: number; bytesIn: number; bytesOut: number };
}

export type RestEntry = number[];

/** Relay → its parent, whenever its leaves (workers below it) or its tree change; 0 leaves take it out of the rounds. */
export interface Leaves {
  type: 'leaves';
  count: number;
  /** Its members, and theirs below them, for its parent's status and dashboard. */
  children: TreeNode[];
}

/** A member of a relay, as its parent shows it. */
export interface TreeNode {
  id: string;
  role: PeerRole;
  backend: string;
  slots: number;
  children?: TreeNode[];
}

/** Deepest tree a relay may report, and the most members in it. */
const MAX_TREE_DEPTH = 8;
const MAX_TREE_NODES = 4096;

/** Most rest entries in one reply: one per coordinate at most, and in practice a handful. */
const MAX_REST = 1 << 22;
/** An expansion of a sum of float64 values has at most ~40 components; a few more for safety. */
const MAX_COMPONENTS = 64;

function readRest(f: Fields, key: string): RestEntry[] | undefined {
  if (f.optional(key) === undefined) return undefined;
  return f.array(key, MAX_REST, (v, path) => {
    if (!Array.isArray(v) || v.length < 3 || v.length > 2 + MAX_COMPONENTS) throw badMessage(path, `expected [tensor, coordinate, components...]`);
    const [t, i] = v as unknown[];
    if (!Number.isSafeInteger(t) || (t as number) < 0 || !Number.isSafeInteger(i) || (i as number) < 0)
      throw badMessage(path, 'bad tensor or coordinate index');
    if (!v.every((x) => typeof x === 'number' && Number.isFinite(x))) throw badMessage(path, 'components must be finite numbers');
    return v as number[];
  });
}

/** What every answer to a round starts with: which round, how many samples (a relay may have none), their loss. */
function readAnswer(f: Fields, minSamples: number): { round: number; phase: Phase; samples: number; loss: number } {
  const round = f.integer('round', 0);
  const phase = f.oneOf('phase', PHASES);
  const samples = f.integer('samples', minSamples);
  const loss = f.required('loss');
  if (typeof loss !== 'number') throw badMessage(f.at('loss'), `expected a number, got ${typeof loss}`);
  // A diverged worker is a training problem, not a malformed message: report it as such.
  if (!Number.isFinite(loss)) throw new GanError('NON_FINITE', `${f.at('loss')} is ${loss}`);
  return { round, phase, samples, loss };
}

export function readSums(f: Fields): Sums {
  const { round, phase, samples, loss } = readAnswer(f, 0);
  const used = f.array('used', MAX_SLOTS, (v, path) => {
    if (!Number.isSafeInteger(v) || (v as number) < 0) throw badMessage(path, 'expected a slot index');
    return v as number;
  });
  const sums = f.optionalTensors('sums');
  if (samples > 0 !== (sums !== undefined)) throw badMessage(f.at('sums'), 'present exactly when samples > 0');
  return {
    type: 'sums',
    round,
    phase,
    samples,
    loss,
    used,
    sums,
    rest: readRest(f, 'rest'),
    stats: f.optionalTensors('stats'),
    statsRest: readRest(f, 'statsRest'),
    computeMs: f.number('computeMs', 0),
    relay: f.optionalMap('relay', (r) => ({ roundMs: r.number('roundMs', 0), bytesIn: r.integer('bytesIn', 0), bytesOut: r.integer('bytesOut', 0) })),
  };
}

/** The most slots one round may give one connection. */
export const MAX_SLOTS = 1 << 16;

export function readLeaves(f: Fields): Leaves {
  let nodes = 0;
  const readNode =
    (depth: number) =>
    (n: Fields): TreeNode => {
      if (++nodes > MAX_TREE_NODES) throw badMessage(n.path, `more than ${MAX_TREE_NODES} members in the tree`);
      const children = n.optional('children') === undefined ? undefined : readNodes(n, depth + 1);
      return {
        id: n.string('id', MAX_NAME_LENGTH),
        role: n.oneOf('role', PEER_ROLES),
        backend: n.string('backend', MAX_NAME_LENGTH),
        slots: n.integer('slots', 0, MAX_SLOTS),
        ...(children ? { children } : {}),
      };
    };
  const readNodes = (m: Fields, depth: number): TreeNode[] => {
    if (depth > MAX_TREE_DEPTH) throw badMessage(m.path, `a tree deeper than ${MAX_TREE_DEPTH}`);
    return m.array('children', MAX_TREE_NODES, (v, path) => readMap(v, path, readNode(depth)));
  };
  return { type: 'leaves', count: f.integer('count', 0, MAX_SLOTS), children: readNodes(f, 1) };
}

export function readGradients(f: Fields): Gradients {
  const { round, phase, samples, loss } = readAnswer(f, 1);
  return {
    type: 'gradients',
    round,
    phase,
    samples,
    loss,
    grads: f.tensors('grads'),
    stats: f.optionalTensors('stats'),
    computeMs: f.number('computeMs', 0),
  };
}

/** Packs sample indices as the little-endian bytes `round.indices` carries. */
export function encodeIndices(indices: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(indices.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < indices.length; i++) view.setUint32(i * 4, indices[i]!, true);
  return out;
}

/** Reads `round.indices`; works at any byte offset (msgpack bin fields rarely land 4-aligned). */
export function decodeIndices(bytes: Uint8Array): Uint32Array {
  if (bytes.byteLength % 4 !== 0) throw badMessage('indices', 'length is not a multiple of 4');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Uint32Array(bytes.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getUint32(i * 4, true);
  return out;
}
