import { existsSync, statSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { type SharedMemoryCalls, loadSharedMemory, sharedMemoryStatus } from '../backends/index.js';
import { GanError } from '../wire/index.js';
import { CONTROL_BYTES, SHARED_MEMORY_DIR, SharedRegion } from './sharedRegion.js';

describe('SharedRegion', () => {
  let map: SharedMemoryCalls;
  beforeAll(async () => {
    const loaded = await loadSharedMemory();
    if (!('calls' in loaded)) throw new Error(`the native addon is needed here: ${loaded.why}`);
    map = loaded.calls;
  });

  it('the parent creates an owner-only file with a nonce; the worker maps the same memory; the name can go while both keep it', () => {
    const { region, nonce } = SharedRegion.create(map, 4096);
    try {
      expect(statSync(region.path).mode & 0o777).toBe(0o600);
      expect(statSync(region.path).size).toBe(CONTROL_BYTES + 8192);
      const worker = SharedRegion.open(map, region.path, 4096);
      expect(worker.nonce()).toEqual(new Uint8Array(nonce));
      region.unlink();
      expect(existsSync(region.path)).toBe(false);
      region.down.set([1, 2, 3], 100);
      worker.up.set([9], 4095);
      expect([...worker.down.subarray(100, 103)]).toEqual([1, 2, 3]);
      expect(region.up[4095]).toBe(9);
      expect(region.down[4095]).toBe(0);
    } finally {
      region.unlink();
    }
  });

  it('a frame announced on one side is the frame the other side takes: wait() wakes for it, watch() calls back for it', async () => {
    const { region: parent } = SharedRegion.create(map, 4096);
    const worker = SharedRegion.open(map, parent.path, 4096);
    parent.unlink();
    expect(worker.wait('down', 0)).toBe(false);
    parent.down.set([5, 6, 7]);
    parent.announce('down', 3);
    expect(worker.wait('down', 1000)).toBe(true);
    expect([...worker.announced('down')]).toEqual([5, 6, 7]);
    expect(worker.wait('down', 10)).toBe(false);

    let calls = 0;
    const keepAlive = setTimeout(() => undefined, 10_000);
    const stop = parent.watch('up', () => (calls += 1));
    worker.up.set([1, 2], 0);
    worker.announce('up', 2);
    await expect.poll(() => calls, { timeout: 5000 }).toBe(1);
    expect([...parent.announced('up')]).toEqual([1, 2]);
    stop();
    worker.announce('up', 2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(calls).toBe(1);
    clearTimeout(keepAlive);
  });

  it('a frame announced before it is all written: waitWritten waits for what is published, up to its timeout', () => {
    const { region: parent } = SharedRegion.create(map, 4096);
    const worker = SharedRegion.open(map, parent.path, 4096);
    parent.unlink();
    parent.announce('down', 1000, 100);
    expect(worker.wait('down', 1000)).toBe(true);
    expect(worker.announced('down').byteLength).toBe(1000);
    expect(worker.waitWritten('down', 100, 0)).toBe(true);
    const started = performance.now();
    expect(worker.waitWritten('down', 101, 30)).toBe(false);
    expect(performance.now() - started).toBeGreaterThanOrEqual(29);
    parent.publish('down', 600);
    expect(worker.waitWritten('down', 600, 1000)).toBe(true);
    expect(worker.waitWritten('down', 1000, 0)).toBe(false);
    parent.publish('down', 1000);
    expect(worker.waitWritten('down', 1000, 1000)).toBe(true);
    // The next frame starts from what its announcement says, not from the last frame's end.
    parent.announce('down', 500, 10);
    expect(worker.waitWritten('down', 11, 0)).toBe(false);
    // A frame announced whole is all written; each way has its own count.
    worker.announce('up', 800);
    expect(parent.waitWritten('up', 800, 0)).toBe(true);
    expect(worker.waitWritten('down', 11, 0)).toBe(false);
  });

  it.each([
    ['zero bytes', 0],
    ['more than the half holds', 4097],
    ['a fraction', 1.5],
    ['NaN', Number.NaN],
  ])('a frame announced as %s is refused (BAD_FRAME)', (_, length) => {
    const { region } = SharedRegion.create(map, 4096);
    region.unlink();
    region.announce('up', length);
    expect(() => region.announced('up')).toThrow(GanError);
    expect(() => region.announced('up')).toThrow(/announced in a region of 4096/);
  });

  it('two regions have different names and nonces', () => {
    const [a, b] = [SharedRegion.create(map, 64), SharedRegion.create(map, 64)];
    a.region.unlink();
    b.region.unlink();
    expect(a.region.path).not.toBe(b.region.path);
    expect(Buffer.compare(a.nonce, b.nonce)).not.toBe(0);
  });

  it.each([
    ['a file elsewhere', '/tmp/ganfleet-0123456789abcdef0123456789abcdef'],
    ['another name in the directory', `${SHARED_MEMORY_DIR}/passwd`],
    ['a path that climbs out', `${SHARED_MEMORY_DIR}/../etc/ganfleet-0123456789abcdef0123456789abcdef`],
    ['a name with a suffix', `${SHARED_MEMORY_DIR}/ganfleet-0123456789abcdef0123456789abcdef.x`],
  ])('a worker refuses to map %s (BAD_MESSAGE), whatever an offer says', (_, path) => {
    expect(() => SharedRegion.open(map, path, 64)).toThrow(GanError);
    expect(() => SharedRegion.open(map, path, 64)).toThrow(/not a region's name/);
  });

  it('without the addon, with a module that cannot map, or off Linux, shared memory is off and the log says why', async () => {
    const missing = await loadSharedMemory(() => Promise.reject(new Error('no binary\nmore')));
    expect(missing).toEqual({ why: 'no binary' });
    expect(sharedMemoryStatus(missing)).toEqual({ available: false, why: 'no binary' });
    const other = await loadSharedMemory(async () => ({ isa: () => 'portable', mapShared: () => new ArrayBuffer(8) }));
    expect(sharedMemoryStatus(other)).toEqual({ available: false, why: expect.stringMatching(/cannot map memory$/) });
    const elsewhere = await loadSharedMemory(undefined, 'darwin');
    expect(sharedMemoryStatus(elsewhere)).toEqual({ available: false, why: 'shared memory needs Linux (this is darwin)' });
    expect(sharedMemoryStatus({ calls: map })).toEqual({ available: true });
  });

  it('a region whose file is shorter than offered cannot be mapped', () => {
    const { region } = SharedRegion.create(map, 64);
    try {
      expect(() => SharedRegion.open(map, region.path, 65)).toThrow(new RegExp(`at least ${CONTROL_BYTES + 130} bytes`));
    } finally {
      region.unlink();
    }
  });
});
