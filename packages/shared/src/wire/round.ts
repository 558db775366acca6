/* One training round: the coordinator asks for gradients, the worker returns them. */
import type { EncodedTensors } from './codec.js';
import { GanError } from './errors.js';
import { UINT32_MAX, badMessage, type Fields } from './fields.js';

/** Which network's gradients a round asks for. */
export type Phase = 'D' | 'G';

export const PHASES: readonly Phase[] = ['D', 'G'];

/** Coordinator → worker: compute this slot of round `round`. */
export interface Round {
  type: 'round';
  round: number;
  phase: Phase;
  batchSize: number;
  /** Seeds the worker's noise (see rng.ts) so results do not depend on which worker ran it. */
  seed: number;
  /** Raw little-endian uint32 sample indices into the data set; D phase only (see encodeIndices). */
  indices?: Uint8Array;
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
  const seed = f.integer('seed', 0, UINT32_MAX);
  const indices = f.optionalBytes('indices');
  if (indices !== undefined) {
    if (phase !== 'D') throw badMessage(f.at('indices'), 'only allowed in the D phase');
    if (indices.byteLength % 4 !== 0) throw badMessage(f.at('indices'), 'length is not a multiple of 4');
  }
  const update = f.optionalTensors('update');
  return { type: 'round', round, phase, batchSize, seed, indices, update };
}

export function readGradients(f: Fields): Gradients {
  const round = f.integer('round', 0);
  const phase = f.oneOf('phase', PHASES);
  const samples = f.integer('samples', 1);
  const loss = f.required('loss');
  if (typeof loss !== 'number') throw badMessage(f.at('loss'), `expected a number, got ${typeof loss}`);
  // A diverged worker is a training problem, not a malformed message: report it as such.
  if (!Number.isFinite(loss)) throw new GanError('NON_FINITE', `${f.at('loss')} is ${loss}`);
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
