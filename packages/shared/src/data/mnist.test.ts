import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatherBatch, loadDataset, type Dataset } from './mnist.js';

/** An IDX file of unsigned bytes with the given shape. */
function idx(dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  out.set([0, 0, 8, dims.length]);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

function toBytes(images: Float32Array): Uint8Array {
  return Uint8Array.from(images, (v) => Math.round((v + 1) * 127.5));
}

describe('loadDataset (bundled MNIST)', () => {
  let train: Dataset;
  let test: Dataset;
  beforeAll(async () => {
    [train, test] = await Promise.all([loadDataset({ split: 'train' }), loadDataset({ split: 'test' })]);
  });

  it('has the standard sizes', () => {
    expect([train.name, train.split, train.count, train.height, train.width]).toEqual(['mnist', 'train', 60000, 28, 28]);
    expect([test.name, test.split, test.count]).toEqual(['mnist', 'test', 10000]);
    expect(train.images.length).toBe(60000 * 28 * 28);
    expect(train.labels.length).toBe(60000);
  });

  it('scales pixels into [-1, 1] and has labels 0..9', () => {
    for (const ds of [train, test]) {
      let min = Infinity;
      let max = -Infinity;
      for (const v of ds.images) {
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      expect([min, max]).toEqual([-1, 1]);
      expect(new Set(ds.labels)).toEqual(new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    }
  });

  it('fingerprints differ between splits and are stable', async () => {
    expect(train.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(test.fingerprint).not.toBe(train.fingerprint);
    expect((await loadDataset({ split: 'test' })).fingerprint).toBe(test.fingerprint);
  });

  describe('from a directory', () => {
    const n = 50;
    let root: string;
    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'ganfleet-mnist-'));
    });
    afterAll(async () => {
      await rm(root, { recursive: true, force: true });
    });

    async function writeSlice(dir: string, names: { images: string; labels: string }, labelCount = n): Promise<void> {
      await mkdir(dir, { recursive: true });
      const px = toBytes(test.images.subarray(0, n * 784));
      await writeFile(join(dir, names.images), gzipSync(idx([n, 28, 28], px)));
      await writeFile(join(dir, names.labels), gzipSync(idx([labelCount], test.labels.subarray(0, labelCount))));
    }

    it('loads gzipped copies of a slice with the same values', async () => {
      const dir = join(root, 'slice');
      await writeSlice(dir, { images: 't10k-images-idx3-ubyte.gz', labels: 't10k-labels-idx1-ubyte.gz' });
      const ds = await loadDataset({ dir, split: 'test' });
      expect([ds.name, ds.count, ds.height, ds.width]).toEqual(['slice', n, 28, 28]);
      expect(ds.images).toEqual(test.images.subarray(0, n * 784));
      expect(ds.labels).toEqual(test.labels.subarray(0, n));
      expect(ds.fingerprint).not.toBe(test.fingerprint);
    });

    it('accepts the dotted file names some mirrors use', async () => {
      const dir = join(root, 'dotted');
      await writeSlice(dir, { images: 'train-images.idx3-ubyte.gz', labels: 'train-labels.idx1-ubyte.gz' });
      const ds = await loadDataset({ dir, split: 'train' });
      expect(ds.count).toBe(n);
      expect(ds.fingerprint).toBe((await loadDataset({ dir: join(root, 'slice'), split: 'test' })).fingerprint);
    });

    it('lists what it looked for when files are missing', async () => {
      const dir = join(root, 'slice');
      await expect(loadDataset({ dir, split: 'train' })).rejects.toMatchObject({
        code: 'DATA_NOT_FOUND',
        message: expect.stringContaining(
          'train images (train-images-idx3-ubyte, train-images-idx3-ubyte.gz, train-images.idx3-ubyte, train-images.idx3-ubyte.gz) or labels (train-labels-idx1-ubyte,',
        ),
      });
      await expect(loadDataset({ dir: join(root, 'absent'), split: 'train' })).rejects.toMatchObject({
        code: 'DATA_NOT_FOUND',
        message: expect.stringMatching(/absent does not exist/),
      });
    });

    it('rejects mismatched image and label counts', async () => {
      const dir = join(root, 'mismatch');
      await writeSlice(dir, { images: 't10k-images-idx3-ubyte.gz', labels: 't10k-labels-idx1-ubyte.gz' }, n - 1);
      await expect(loadDataset({ dir, split: 'test' })).rejects.toMatchObject({
        code: 'DATA_INVALID',
        message: `t10k-images-idx3-ubyte.gz has ${n} images but t10k-labels-idx1-ubyte.gz has ${n - 1} labels`,
      });
    });

    it('rejects an image file of the wrong rank', async () => {
      const dir = join(root, 'rank');
      await mkdir(dir);
      await writeFile(join(dir, 't10k-images-idx3-ubyte'), idx([4, 4], new Uint8Array(16)));
      await writeFile(join(dir, 't10k-labels-idx1-ubyte'), idx([4], new Uint8Array(4)));
      await expect(loadDataset({ dir, split: 'test' })).rejects.toMatchObject({
        code: 'DATA_INVALID',
        message: 't10k-images-idx3-ubyte: expected 3 dimensions, got 4x4',
      });
    });
  });

  it('gatherBatch copies the requested images in order', () => {
    const out = gatherBatch(test, [7, 0, 7]);
    expect(out.length).toBe(3 * 784);
    expect(out.subarray(0, 784)).toEqual(test.images.subarray(7 * 784, 8 * 784));
    expect(out.subarray(784, 1568)).toEqual(test.images.subarray(0, 784));
    expect(out.subarray(1568)).toEqual(test.images.subarray(7 * 784, 8 * 784));

    const reused = new Float32Array(2 * 784);
    expect(gatherBatch(test, Uint32Array.from([9999, 1]), reused)).toBe(reused);
    expect(reused.subarray(0, 784)).toEqual(test.images.subarray(9999 * 784));
  });

  it('gatherBatch rejects bad indices and a wrongly sized output', () => {
    expect(() => gatherBatch(test, [10000])).toThrow(/index 10000 out of range 0..9999/);
    expect(() => gatherBatch(test, [1.5])).toThrow(/out of range/);
    expect(() => gatherBatch(test, [1], new Float32Array(10))).toThrow(/output holds 10 floats/);
  });
});
