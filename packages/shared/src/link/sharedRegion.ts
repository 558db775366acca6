/*
 * Memory that a parent (coordinator or relay) and one worker on its machine both map: each round's
 * frames are written there instead of being sent, and the socket carries only a sharedFrame notice.
 * Loopback TCP costs a copy into the kernel and one out on each side, ws's framing and a join; a
 * frame in shared memory is written once by its sender and read in place (docs/benchmarks.md).
 *
 * The parent creates the file (owner-only, a random name, in /dev/shm) and writes a random nonce at
 * its start; the worker maps it and answers with the nonce, which proves it mapped that very file;
 * the parent then removes the name (the mappings stay) and from then on writes its frames in the
 * first half. The worker writes its frames in the second half once a frame has come that way.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, ftruncateSync, openSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { GanError, NONCE_BYTES } from '../wire/index.js';
import type { MapShared } from '../backends/native/sharedMapping.js';

/** Where regions live: memory, not disk, on Linux. */
export const SHARED_MEMORY_DIR = '/dev/shm';

/** Only names of this form in SHARED_MEMORY_DIR are mapped: an offer cannot point a worker at another file. */
const NAME = /^ganfleet-[0-9a-f]{32}$/;

export class SharedRegion {
  /** The parent's frames. */
  readonly down: Uint8Array;
  /** The worker's frames. */
  readonly up: Uint8Array;

  private constructor(
    readonly path: string,
    /** Bytes each way. */
    readonly bytes: number,
    memory: ArrayBuffer,
  ) {
    this.down = new Uint8Array(memory, 0, bytes);
    this.up = new Uint8Array(memory, bytes, bytes);
  }

  /** The parent's side: a new region of `bytes` each way, and the nonce at its start. */
  static create(map: MapShared, bytes: number): { region: SharedRegion; nonce: Uint8Array } {
    const path = join(SHARED_MEMORY_DIR, `ganfleet-${randomBytes(16).toString('hex')}`);
    const fd = openSync(path, 'wx', 0o600);
    try {
      ftruncateSync(fd, 2 * bytes);
      const region = new SharedRegion(path, bytes, map(path, 2 * bytes));
      const nonce = randomBytes(NONCE_BYTES);
      region.down.set(nonce);
      return { region, nonce };
    } catch (err) {
      rmSync(path, { force: true });
      throw err;
    } finally {
      closeSync(fd);
    }
  }

  /** The worker's side: the region an offer names (throws a coded error for a name that is not a region's). */
  static open(map: MapShared, path: string, bytes: number): SharedRegion {
    if (dirname(path) !== SHARED_MEMORY_DIR || !NAME.test(basename(path)))
      throw new GanError('BAD_MESSAGE', `shared memory offered at ${path}, which is not a region's name`);
    return new SharedRegion(path, bytes, map(path, 2 * bytes));
  }

  /** The nonce the region starts with, as the worker read it. */
  nonce(): Uint8Array {
    return this.down.slice(0, NONCE_BYTES);
  }

  /** Removes the file's name; the memory stays mapped until both sides drop it. */
  unlink(): void {
    rmSync(this.path, { force: true });
  }
}
