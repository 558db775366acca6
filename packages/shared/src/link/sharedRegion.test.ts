import { existsSync, statSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { type MapShared, loadMapShared, sharedMemoryStatus } from '../backends/index.js';
import { GanError } from '../wire/index.js';
import { SHARED_MEMORY_DIR, SharedRegion } from './sharedRegion.js';

describe('SharedRegion', () => {
  let map: MapShared;
  beforeAll(async () => {
    const loaded = await loadMapShared();
    if (!('map' in loaded)) throw new Error(`the native addon is needed here: ${loaded.why}`);
    map = loaded.map;
  });

  it('the parent creates an owner-only file with a nonce; the worker maps the same memory; the name can go while both keep it', () => {
    const { region, nonce } = SharedRegion.create(map, 4096);
    try {
      expect(statSync(region.path).mode & 0o777).toBe(0o600);
      expect(statSync(region.path).size).toBe(8192);
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

  it('without the addon, or with a module that cannot map, shared memory is off and the log says why', async () => {
    const missing = await loadMapShared(() => Promise.reject(new Error('no binary\nmore')));
    expect(missing).toEqual({ why: 'no binary' });
    expect(sharedMemoryStatus(missing)).toEqual({ available: false, why: 'no binary' });
    const other = await loadMapShared(async () => ({ isa: () => 'portable' }));
    expect(sharedMemoryStatus(other)).toEqual({ available: false, why: expect.stringMatching(/cannot map memory$/) });
    expect(sharedMemoryStatus({ map })).toEqual({ available: true });
  });

  it('a region whose file is shorter than offered cannot be mapped', () => {
    const { region } = SharedRegion.create(map, 64);
    try {
      expect(() => SharedRegion.open(map, region.path, 65)).toThrow(/at least 130 bytes/);
    } finally {
      region.unlink();
    }
  });
});
