import { describe, expect, it } from 'vitest';
import { BatchDispenser, epochPermutation, shardIndices, type DispenserState } from './shard.js';

function sorted(a: Iterable<number>): number[] {
  return Array.from(a).sort((x, y) => x - y);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

describe('shardIndices', () => {
  it('splits one epoch into disjoint near-equal blocks covering every index', () => {
    for (const [count, n] of [
      [103, 4],
      [10, 3],
      [7, 7],
      [5, 8],
    ] as const) {
      const shards = range(n).map((k) => shardIndices(count, k, n, 42, 3));
      const sizes = shards.map((s) => s.length);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      expect(sorted(shards.flatMap((s) => Array.from(s)))).toEqual(range(count));
      // Contiguous blocks of the epoch's permutation, in shard order.
      expect(shards.flatMap((s) => Array.from(s))).toEqual(Array.from(epochPermutation(count, 42, 3)));
    }
  });

  it('is deterministic per seed and epoch and reshuffles between epochs', () => {
    expect(shardIndices(1000, 1, 4, 7, 0)).toEqual(shardIndices(1000, 1, 4, 7, 0));
    expect(epochPermutation(1000, 7, 0)).not.toEqual(epochPermutation(1000, 7, 1));
    expect(epochPermutation(1000, 7, 0)).not.toEqual(epochPermutation(1000, 8, 0));
  });

  it('rejects a shard number out of range', () => {
    expect(() => shardIndices(10, 3, 3, 0, 0)).toThrow(/shard 3 out of range/);
    expect(() => shardIndices(10, 0, 0, 0, 0)).toThrow(/shard count must be a positive integer/);
  });
});

describe('BatchDispenser', () => {
  /** Draws round-robin over all slots and returns every batch with its epoch. */
  function drain(d: BatchDispenser, draws: number, batch: number): { epoch: number; slot: number; indices: number[] }[] {
    const out = [];
    for (let i = 0; i < draws; i++) {
      const slot = i % d.shards;
      const r = d.next(slot, batch);
      out.push({ epoch: r.epoch, slot, indices: Array.from(r.indices) });
    }
    return out;
  }

  it('draws each slot from its own shard', () => {
    const d = new BatchDispenser({ count: 100, seed: 5, shards: 4 });
    for (let k = 0; k < 4; k++) {
      const shard = Array.from(shardIndices(100, k, 4, 5, 0));
      expect(Array.from(d.next(k, 10).indices)).toEqual(shard.slice(0, 10));
      expect(Array.from(d.next(k, 10).indices)).toEqual(shard.slice(10, 20));
    }
  });

  it('never repeats an index within an epoch and drops the remainder when a shard runs out', () => {
    const d = new BatchDispenser({ count: 103, seed: 1, shards: 3 });
    // Shards hold 34, 34 and 35 indices: three batches of 10 each, then slot 0 runs dry.
    const batches = drain(d, 10, 10);
    expect(batches.slice(0, 9).every((b) => b.epoch === 0)).toBe(true);
    expect(batches[9]).toMatchObject({ epoch: 1, slot: 0 });
    const epoch0 = batches.slice(0, 9).flatMap((b) => b.indices);
    expect(new Set(epoch0).size).toBe(90);
    expect(batches[9]?.indices).toEqual(Array.from(shardIndices(103, 0, 3, 1, 1)).slice(0, 10));
  });

  it('advances the epoch when any single slot cannot fill a batch', () => {
    const d = new BatchDispenser({ count: 40, seed: 2, shards: 2 });
    expect(d.next(0, 15).epoch).toBe(0);
    expect(d.next(0, 15).epoch).toBe(1);
    // Slot 1 drew nothing in epoch 0; its epoch-0 shard is dropped.
    expect(Array.from(d.next(1, 15).indices)).toEqual(Array.from(shardIndices(40, 1, 2, 2, 1)).slice(0, 15));
  });

  it('never repeats an index within an epoch across reshards', () => {
    const d = new BatchDispenser({ count: 1000, seed: 9, shards: 4 });
    const seen = new Map<number, Set<number>>();
    const record = (epoch: number, indices: Iterable<number>): void => {
      const s = seen.get(epoch) ?? new Set<number>();
      for (const i of indices) {
        expect(s.has(i)).toBe(false);
        s.add(i);
      }
      seen.set(epoch, s);
    };
    const plan = [4, 4, 2, 5, 5, 3, 1, 6];
    for (let round = 0; round < 60; round++) {
      if (round % 7 === 3) d.reshard(plan[((round / 7) | 0) % plan.length] as number);
      for (let slot = 0; slot < d.shards; slot++) {
        const r = d.next(slot, 16);
        record(r.epoch, r.indices);
      }
    }
    expect(seen.size).toBeGreaterThan(2);
    // Complete epochs hand out most of the data; only per-shard remainders are dropped.
    for (const [epoch, s] of seen) if (epoch < d.state().epoch) expect(s.size).toBeGreaterThan(800);
  });

  it('re-splits the unconsumed indices of the epoch into near-equal contiguous blocks', () => {
    const d = new BatchDispenser({ count: 60, seed: 3, shards: 2 });
    const taken = [...d.next(0, 10).indices, ...d.next(1, 4).indices];
    d.reshard(3);
    const rest: number[] = [];
    for (let slot = 0; slot < 3; slot++) rest.push(...d.next(slot, 15).indices);
    // 46 left over three slots: blocks of 15, 15, 16, so every slot can draw 15 from epoch 0.
    expect(d.state().epoch).toBe(0);
    const all = [...taken, ...rest];
    expect(all.length).toBe(59);
    expect(new Set(all).size).toBe(59);
  });

  it('same seed gives the same sequence', () => {
    const run = (): unknown => {
      const d = new BatchDispenser({ count: 500, seed: 77, shards: 3 });
      const a = drain(d, 20, 32);
      d.reshard(2);
      return [...a, ...drain(d, 30, 32)];
    };
    expect(run()).toEqual(run());
  });

  it('restores from state() and continues identically, including mid-epoch after reshards', () => {
    const d = new BatchDispenser({ count: 777, seed: 11, shards: 3 });
    drain(d, 40, 20);
    d.reshard(5);
    drain(d, 7, 20);
    d.reshard(2);
    d.next(1, 20);
    const s = d.state();
    expect(s.phases.length).toBe(3);
    const restored = BatchDispenser.fromState(JSON.parse(JSON.stringify(s)) as DispenserState);
    expect(restored.state()).toEqual(s);
    expect(drain(restored, 50, 20)).toEqual(drain(d, 50, 20));
    expect(restored.state()).toEqual(d.state());
  });

  it('keeps a single phase when resharding before anything is drawn', () => {
    const d = new BatchDispenser({ count: 100, seed: 0, shards: 1 });
    d.reshard(2);
    d.reshard(4);
    expect(d.state()).toEqual({ count: 100, seed: 0, epoch: 0, phases: [{ shards: 4, consumed: [0, 0, 0, 0] }] });
    expect(Array.from(d.next(3, 5).indices)).toEqual(Array.from(shardIndices(100, 3, 4, 0, 0)).slice(0, 5));
  });

  it('rejects a batch larger than a shard without changing state', () => {
    const d = new BatchDispenser({ count: 10, seed: 0, shards: 3 });
    d.next(0, 2);
    const before = d.state();
    expect(() => d.next(1, 4)).toThrow(/batch size 4 exceeds the 3 examples of shard 1/);
    expect(d.state()).toEqual(before);
    expect(() => d.next(3, 1)).toThrow(/slot 3 out of range/);
    expect(() => d.next(0, 0)).toThrow(/batch size must be a positive integer/);
  });

  it('rejects corrupt state', () => {
    const good = new BatchDispenser({ count: 10, seed: 0, shards: 2 }).state();
    const bad: DispenserState[] = [
      { ...good, phases: [] },
      { ...good, epoch: -1 },
      { ...good, phases: [{ shards: 2, consumed: [0] }] },
      { ...good, phases: [{ shards: 2, consumed: [6, 0] }] },
    ];
    for (const s of bad) expect(() => BatchDispenser.fromState(s)).toThrow(/batch dispenser state/);
  });
});
