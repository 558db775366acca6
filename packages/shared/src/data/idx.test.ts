import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GanError } from '../wire/index.js';
import { parseIdx, readIdxFile } from './idx.js';

/** Builds an IDX buffer; `type` and the payload can be overridden to produce broken files. */
function idx(dims: number[], data?: number[], type = 0x08): Uint8Array {
  const payload = data ?? Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => i % 256);
  const out = new Uint8Array(4 + 4 * dims.length + payload.length);
  const view = new DataView(out.buffer);
  out.set([0, 0, type, dims.length]);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(payload, 4 + 4 * dims.length);
  return out;
}

function expectInvalid(f: () => unknown, message: RegExp): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(GanError);
    expect((e as GanError).code).toBe('DATA_INVALID');
    expect((e as GanError).message).toMatch(message);
    return;
  }
  expect.fail('did not throw');
}

describe('parseIdx', () => {
  it('parses dims and data', () => {
    const a = parseIdx(idx([2, 3, 2]), 'x');
    expect(a.dims).toEqual([2, 3, 2]);
    expect(Array.from(a.data)).toEqual(Array.from({ length: 12 }, (_, i) => i));
  });

  it('parses a 1-d label file', () => {
    expect(parseIdx(idx([4], [7, 1, 0, 9]), 'labels')).toEqual({ dims: [4], data: Uint8Array.from([7, 1, 0, 9]) });
  });

  it('handles a buffer that is a view at an offset', () => {
    const inner = idx([3], [5, 6, 7]);
    const outer = new Uint8Array(inner.length + 5);
    outer.set(inner, 5);
    expect(Array.from(parseIdx(outer.subarray(5), 'x').data)).toEqual([5, 6, 7]);
  });

  it('rejects a short header', () => {
    expectInvalid(() => parseIdx(Uint8Array.from([0, 0]), 'f'), /^f: too short for an IDX header \(2 bytes\)/);
    expectInvalid(() => parseIdx(idx([2, 2]).subarray(0, 9), 'f'), /^f: truncated header: expected 12 bytes for 2 dimensions, got 9/);
  });

  it('rejects a bad magic', () => {
    const b = idx([2]);
    b[1] = 0x12;
    expectInvalid(() => parseIdx(b, 'f'), /^f: bad magic: expected 00 00 at start, got 00 12/);
  });

  it('rejects types other than unsigned byte', () => {
    expectInvalid(() => parseIdx(idx([2], [0, 0], 0x0d), 'f'), /unsupported data type 0x0d/);
  });

  it('rejects 0 or more than 4 dimensions', () => {
    expectInvalid(() => parseIdx(Uint8Array.from([0, 0, 8, 0]), 'f'), /unsupported number of dimensions 0/);
    expectInvalid(() => parseIdx(idx([1, 1, 1, 1, 1]), 'f'), /unsupported number of dimensions 5/);
  });

  it('rejects a zero dimension', () => {
    expectInvalid(() => parseIdx(idx([3, 0], []), 'f'), /^f: dimension 1 is 0/);
  });

  it('rejects truncated data, naming the file and the shape', () => {
    const b = idx([10, 28, 28]).subarray(0, 1000);
    expectInvalid(() => parseIdx(b, 'train-images-idx3-ubyte'), /^train-images-idx3-ubyte: expected 7856 bytes for 10x28x28, got 1000 \(truncated\)/);
  });

  it('rejects trailing bytes', () => {
    expectInvalid(() => parseIdx(idx([2], [1, 2, 3]), 'f'), /^f: expected 10 bytes for 2, got 11 \(1 trailing bytes\)/);
  });

  it('points gzipped input at readIdxFile', () => {
    expectInvalid(() => parseIdx(gzipSync(idx([2])), 'f'), /gzip/);
  });
});

describe('readIdxFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ganfleet-idx-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads plain and gzipped files alike', async () => {
    const bytes = idx([3, 2, 2]);
    await writeFile(join(dir, 'a-idx3-ubyte'), bytes);
    await writeFile(join(dir, 'a-idx3-ubyte.gz'), gzipSync(bytes));
    const plain = await readIdxFile(join(dir, 'a-idx3-ubyte'));
    const gz = await readIdxFile(join(dir, 'a-idx3-ubyte.gz'));
    expect(plain.dims).toEqual([3, 2, 2]);
    expect(gz).toEqual(plain);
  });

  it('names the file in validation errors of gzipped data', async () => {
    await writeFile(join(dir, 'bad.gz'), gzipSync(idx([5], [1, 2])));
    await expect(readIdxFile(join(dir, 'bad.gz'))).rejects.toThrow(/^bad\.gz: expected 13 bytes for 5, got 10 \(truncated\)/);
  });

  it('reports corrupt gzip data', async () => {
    const gz = gzipSync(idx([100]));
    await writeFile(join(dir, 'corrupt.gz'), gz.subarray(0, gz.length - 10));
    await expect(readIdxFile(join(dir, 'corrupt.gz'))).rejects.toMatchObject({
      code: 'DATA_INVALID',
      message: /corrupt gzip/,
    });
  });

  it('reports a missing file as DATA_NOT_FOUND', async () => {
    await expect(readIdxFile(join(dir, 'nope'))).rejects.toMatchObject({
      code: 'DATA_NOT_FOUND',
      message: /^nope: cannot read/,
    });
  });
});
