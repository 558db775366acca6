/*
 * Deterministic data order: every epoch is a seeded permutation of the dataset, cut into one
 * contiguous block per worker slot, so any process can recompute who trains on what.
 */

import { GanError } from '../wire/index.js';
import { mixSeed, Rng } from './rng.js';

export function epochPermutation(count: number, seed: number, epoch: number): Uint32Array {
  return new Rng(mixSeed(seed, epoch)).permutation(count);
}

/** The k-th of n contiguous blocks of the epoch's permutation; block sizes differ by at most 1. */
export function shardIndices(count: number, k: number, n: number, seed: number, epoch: number): Uint32Array {
  checkCount(n, 'shard count');
  if (!Number.isInteger(k) || k < 0 || k >= n) throw new GanError('INTERNAL', `shard ${k} out of range 0..${n - 1}`);
  return epochPermutation(count, seed, epoch).slice(blockStart(count, k, n), blockStart(count, k + 1, n));
}

/** JSON-able dispenser position. Permutations are not stored: they are recomputed from seed and epoch. */
export interface DispenserState {
  count: number;
  seed: number;
  epoch: number;
  /**
   * Shard layouts of the current epoch, oldest first. Phase 0 splits the epoch's permutation into
   * `shards` blocks; each later phase re-splits what the phase before left unconsumed.
   * `consumed[k]` counts the indices already handed out from block k.
   */
  phases: { shards: number; consumed: number[] }[];
}

export interface BatchDispenserOptions {
  count: number;
  seed: number;
  shards: number;
}

/**
 * Hands each worker slot its next batch from that slot's shard of the current epoch. When a slot's
 * shard cannot fill a whole batch, the whole dispenser moves to the next (reshuffled) epoch and
 * every slot's leftovers are dropped, like drop_remainder: batches are always full and no index
 * repeats within an epoch.
 */
export class BatchDispenser {
  private readonly count: number;
  private readonly seed: number;
  private epoch = 0;
  /** Completed phases of the current epoch (see DispenserState.phases). */
  private past: DispenserState['phases'] = [];
  /** The indices the current phase splits, and the start of each block (n + 1 entries). */
  private order: Uint32Array = new Uint32Array(0);
  private starts: number[] = [];
  /** Absolute position in `order` of each block's next index. */
  private cursors: number[] = [];

  constructor(opts: BatchDispenserOptions) {
    checkCount(opts.count, 'dataset size');
    checkCount(opts.shards, 'shard count');
    this.count = opts.count;
    this.seed = opts.seed;
    this.startEpoch(0, opts.shards);
  }

  get shards(): number {
    return this.cursors.length;
  }

  next(slot: number, batchSize: number): { epoch: number; indices: Uint32Array } {
    const n = this.shards;
    if (!Number.isInteger(slot) || slot < 0 || slot >= n) {
      throw new GanError('INTERNAL', `slot ${slot} out of range 0..${n - 1}`);
    }
    checkCount(batchSize, 'batch size');
    // Checked against a fresh epoch's shard before advancing, so an impossible request changes nothing.
    const freshSize = blockStart(this.count, slot + 1, n) - blockStart(this.count, slot, n);
    if (batchSize > freshSize) {
      throw new GanError(
        'CONFIG_INVALID',
        `batch size ${batchSize} exceeds the ${freshSize} examples of shard ${slot} (${this.count} examples over ${n} shards)`,
      );
    }
    if ((this.cursors[slot] as number) + batchSize > (this.starts[slot + 1] as number)) {
      this.startEpoch(this.epoch + 1, n);
    }
    const from = this.cursors[slot] as number;
    this.cursors[slot] = from + batchSize;
    return { epoch: this.epoch, indices: this.order.slice(from, from + batchSize) };
  }

  /** Re-splits the current epoch's not yet handed out indices into n blocks, e.g. when workers join or leave. */
  reshard(n: number): void {
    checkCount(n, 'shard count');
    const consumed = this.consumed();
    // Nothing handed out since the last split: re-splitting the same order is equivalent and keeps the history short.
    if (consumed.some((c) => c > 0)) {
      this.past.push({ shards: this.shards, consumed });
      this.order = this.remaining();
    }
    this.split(n);
  }

  state(): DispenserState {
    return {
      count: this.count,
      seed: this.seed,
      epoch: this.epoch,
      phases: [...this.past, { shards: this.shards, consumed: this.consumed() }].map((p) => ({
        shards: p.shards,
        consumed: [...p.consumed],
      })),
    };
  }

  /** Restores a dispenser from `state()` output (e.g. read back from a checkpoint). */
  static fromState(s: DispenserState): BatchDispenser {
    const corrupt = (what: string): GanError => new GanError('CHECKPOINT_CORRUPT', `batch dispenser state: ${what}`);
    if (!isCount(s.count)) throw corrupt(`bad count ${String(s.count)}`);
    if (!Number.isInteger(s.seed)) throw corrupt(`bad seed ${String(s.seed)}`);
    if (!Number.isInteger(s.epoch) || s.epoch < 0) throw corrupt(`bad epoch ${String(s.epoch)}`);
    const first = Array.isArray(s.phases) ? s.phases[0] : undefined;
    if (first === undefined) throw corrupt('no phases');
    for (const p of s.phases) {
      if (!isCount(p.shards) || !Array.isArray(p.consumed) || p.consumed.length !== p.shards) {
        throw corrupt(`bad phase ${JSON.stringify(p)}`);
      }
    }

    const d = new BatchDispenser({ count: s.count, seed: s.seed, shards: first.shards });
    d.startEpoch(s.epoch, first.shards);
    s.phases.forEach((p, i) => {
      if (i > 0) d.reshard(p.shards);
      p.consumed.forEach((c, k) => {
        const size = (d.starts[k + 1] as number) - (d.starts[k] as number);
        if (!Number.isInteger(c) || c < 0 || c > size) throw corrupt(`phase ${i} block ${k}: consumed ${c} of ${size}`);
        d.cursors[k] = (d.starts[k] as number) + c;
      });
    });
    return d;
  }

  private startEpoch(epoch: number, n: number): void {
    this.epoch = epoch;
    this.past = [];
    this.order = epochPermutation(this.count, this.seed, epoch);
    this.split(n);
  }

  private split(n: number): void {
    this.starts = Array.from({ length: n + 1 }, (_, k) => blockStart(this.order.length, k, n));
    this.cursors = this.starts.slice(0, n);
  }

  private consumed(): number[] {
    return this.cursors.map((c, k) => c - (this.starts[k] as number));
  }

  /** The not yet handed out indices of every block, in block order. */
  private remaining(): Uint32Array {
    const parts = this.cursors.map((c, k) => this.order.subarray(c, this.starts[k + 1]));
    const out = new Uint32Array(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/** Start of block k when `len` items are cut into n contiguous blocks whose sizes differ by at most 1. */
function blockStart(len: number, k: number, n: number): number {
  return Math.floor((k * len) / n);
}

function isCount(x: unknown): x is number {
  return Number.isInteger(x) && (x as number) > 0;
}

function checkCount(x: number, what: string): void {
  if (!isCount(x)) throw new GanError('CONFIG_INVALID', `${what} must be a positive integer, got ${x}`);
}
