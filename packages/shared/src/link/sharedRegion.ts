/*
 * Memory that a parent (coordinator or relay) and one worker on its machine both map: each round's
 * frames are written there instead of being sent, and announced by a doorbell in the same memory
 * (a futex the receiver waits on) instead of a socket message. Loopback TCP costs a copy into the
 * kernel and one out on each side, ws's framing and a join, and every message a trip through the
 * TCP stack and each side's event loop; a frame in shared memory is written once by its sender and
 * read in place, and a ring wakes the receiving thread itself (docs/benchmarks.md).
 *
 * The parent creates the file (owner-only, a random name, in /dev/shm) and writes a random nonce at
 * its start; the worker maps it and answers with the nonce, which proves it mapped that very file;
 * the parent then removes the name (the mappings stay) and from then on writes its frames in the
 * first half and rings `down`; the worker answers a frame that came that way in the second half
 * and rings `up`. A frame may be announced before all of it is written: the sender then publishes
 * how much is, as it writes the rest, and the receiver reads no further (waitWritten), so that the
 * worker takes the first parameters of a round while the parent's Adam step computes the others.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, ftruncateSync, openSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { GanError, NONCE_BYTES } from '../wire/index.js';
import type { SharedMemoryCalls } from '../backends/native/sharedMapping.js';

/** Where regions live: memory, not disk, on Linux. */
export const SHARED_MEMORY_DIR = '/dev/shm';

/** Only names of this form in SHARED_MEMORY_DIR are mapped: an offer cannot point a worker at another file. */
const NAME = /^ganfleet-[0-9a-f]{32}$/;

/** Bytes before the frames: the nonce, then each way's doorbell. */
export const CONTROL_BYTES = 4096;

/** A direction: `down` carries the parent's frames, `up` the worker's. */
export type Side = 'down' | 'up';

/** Each doorbell: its counter (uint32, at this byte) and, 8 bytes on, the announced frame's length (float64). */
const BELL: Record<Side, number> = { down: 64, up: 128 };
/** Each way's progress through the announced frame: a counter rung as more is written and, 8 bytes on, the bytes written so far. */
const WRITTEN: Record<Side, number> = { down: 192, up: 256 };

export class SharedRegion {
  /** The parent's frames. */
  readonly down: Uint8Array;
  /** The worker's frames. */
  readonly up: Uint8Array;
  /** The control block as counters (uint32) and as float64s (frame lengths, bytes written). */
  private readonly counters: Uint32Array;
  private readonly float64s: Float64Array;
  /** Each doorbell's value when this side last took a frame from it. */
  private readonly seen: Record<Side, number> = { down: 0, up: 0 };

  private constructor(
    private readonly calls: SharedMemoryCalls,
    readonly path: string,
    /** Bytes each way. */
    readonly bytes: number,
    private readonly memory: ArrayBuffer,
  ) {
    this.counters = new Uint32Array(memory, 0, CONTROL_BYTES / 4);
    this.float64s = new Float64Array(memory, 0, CONTROL_BYTES / 8);
    this.down = new Uint8Array(memory, CONTROL_BYTES, bytes);
    this.up = new Uint8Array(memory, CONTROL_BYTES + bytes, bytes);
  }

  /** The parent's side: a new region of `bytes` each way, and the nonce at its start. */
  static create(calls: SharedMemoryCalls, bytes: number): { region: SharedRegion; nonce: Uint8Array } {
    const path = join(SHARED_MEMORY_DIR, `ganfleet-${randomBytes(16).toString('hex')}`);
    const fd = openSync(path, 'wx', 0o600);
    try {
      const size = CONTROL_BYTES + 2 * bytes;
      ftruncateSync(fd, size);
      const region = new SharedRegion(calls, path, bytes, calls.mapShared(path, size));
      const nonce = randomBytes(NONCE_BYTES);
      new Uint8Array(region.memory).set(nonce);
      return { region, nonce };
    } catch (err) {
      rmSync(path, { force: true });
      throw err;
    } finally {
      closeSync(fd);
    }
  }

  /** The worker's side: the region an offer names (throws a coded error for a name that is not a region's). */
  static open(calls: SharedMemoryCalls, path: string, bytes: number): SharedRegion {
    if (dirname(path) !== SHARED_MEMORY_DIR || !NAME.test(basename(path)))
      throw new GanError('BAD_MESSAGE', `shared memory offered at ${path}, which is not a region's name`);
    return new SharedRegion(calls, path, bytes, calls.mapShared(path, CONTROL_BYTES + 2 * bytes));
  }

  /** The nonce the region starts with, as the worker read it. */
  nonce(): Uint8Array {
    return new Uint8Array(this.memory.slice(0, NONCE_BYTES));
  }

  /**
   * Announces the first `length` bytes of `side`'s half as the sender's next frame, of which the
   * first `written` are written (the rest follow through publish()): the peer's wait or watch wakes.
   */
  announce(side: Side, length: number, written = length): void {
    this.setValue(WRITTEN[side], written);
    this.setValue(BELL[side], length);
    this.calls.ring(this.memory, BELL[side]);
  }

  /** The first `written` bytes of the frame announced last on `side` are final: the peer's waitWritten wakes. */
  publish(side: Side, written: number): void {
    this.setValue(WRITTEN[side], written);
    this.calls.ring(this.memory, WRITTEN[side]);
  }

  /** The frame last announced on `side`, checked: a coded error for a length that is not a frame of this region. */
  announced(side: Side): Uint8Array {
    const length = this.value(BELL[side]);
    if (!Number.isInteger(length) || length < 1 || length > this.bytes)
      throw new GanError('BAD_FRAME', `a frame of ${length} bytes announced in a region of ${this.bytes}`);
    return this[side].subarray(0, length);
  }

  /** Blocks this thread until the first `end` bytes of the frame last announced on `side` are written, or `timeoutMs` passes: whether they are. */
  waitWritten(side: Side, end: number, timeoutMs: number): boolean {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      // The counter before the count: a publish between the two changes the counter, and the wait returns at once.
      const rung = this.counter(WRITTEN[side]);
      if (this.value(WRITTEN[side]) >= end) return true;
      const left = Math.ceil(deadline - performance.now());
      if (left <= 0) return false;
      this.calls.waitRing(this.memory, WRITTEN[side], rung, left);
    }
  }

  /** Blocks this thread until the peer rings `side` or `timeoutMs` passes: whether it rang since the last frame taken. */
  wait(side: Side, timeoutMs: number): boolean {
    return this.take(side, this.calls.waitRing(this.memory, BELL[side], this.seen[side], timeoutMs));
  }

  /**
   * Calls `onRing` on this thread's event loop when the peer rings `side` (once for rings that
   * come together), until the returned function is called.
   */
  watch(side: Side, onRing: () => void): () => void {
    return this.calls.watchRing(this.memory, BELL[side], () => {
      if (this.take(side, this.counter(BELL[side]))) onRing();
    });
  }

  /** Removes the file's name; the memory stays mapped until both sides drop it. */
  unlink(): void {
    rmSync(this.path, { force: true });
  }

  /** The float64 8 bytes after the counter at byte `bell`: the frame's length, or its bytes written. */
  private value(bell: number): number {
    return this.float64s[bell / 8 + 1] as number;
  }

  private setValue(bell: number, value: number): void {
    this.float64s[bell / 8 + 1] = value;
  }

  /** The doorbell counter at byte `offset`, as the peer last rang it. */
  private counter(offset: number): number {
    return Atomics.load(this.counters, offset / 4);
  }

  private take(side: Side, value: number): boolean {
    if (value === this.seen[side]) return false;
    this.seen[side] = value;
    return true;
  }
}
