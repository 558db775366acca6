/*
 * Reader for the IDX format used by MNIST and its look-alikes (Fashion-MNIST, KMNIST):
 * a 4-byte magic (0x00 0x00, a type code, the number of dimensions), one big-endian
 * uint32 per dimension, then the values in row-major order.
 */

import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { GanError } from '../wire/index.js';

export interface IdxArray {
  dims: number[];
  /** Row-major values; a view into the bytes that were parsed, not a copy. */
  data: Uint8Array;
}

/** The only IDX type code supported: every MNIST-family file uses unsigned bytes. */
const TYPE_UBYTE = 0x08;
const MAX_DIMS = 4;

const gunzipAsync = promisify(gunzip);

/** Reads an IDX file, gunzipping it first when it starts with the gzip magic 1f 8b. */
export async function readIdxFile(path: string): Promise<IdxArray> {
  const label = basename(path);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'DATA_NOT_FOUND' : 'DATA_INVALID';
    throw new GanError(code, `${label}: cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (isGzip(bytes)) {
    try {
      bytes = await gunzipAsync(bytes);
    } catch (e) {
      throw new GanError('DATA_INVALID', `${label}: corrupt gzip data: ${(e as Error).message}`, { cause: e });
    }
  }
  return parseIdx(bytes, label);
}

/** Parses an uncompressed IDX buffer; `label` (usually the file name) prefixes every error message. */
export function parseIdx(bytes: Uint8Array, label: string): IdxArray {
  const invalid = (what: string): GanError => new GanError('DATA_INVALID', `${label}: ${what}`);
  if (bytes.length < 4) throw invalid(`too short for an IDX header (${bytes.length} bytes)`);
  if (isGzip(bytes)) throw invalid('data is still gzip-compressed (use readIdxFile)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = view.getUint8(2);
  const ndims = view.getUint8(3);
  if (view.getUint16(0) !== 0) {
    throw invalid(`bad magic: expected 00 00 at start, got ${hex(view.getUint8(0))} ${hex(view.getUint8(1))}`);
  }
  if (type !== TYPE_UBYTE) throw invalid(`unsupported data type 0x${hex(type)} (only 0x08, unsigned byte, is supported)`);
  if (ndims < 1 || ndims > MAX_DIMS) throw invalid(`unsupported number of dimensions ${ndims} (expected 1..${MAX_DIMS})`);

  const headerLen = 4 + 4 * ndims;
  if (bytes.length < headerLen) {
    throw invalid(`truncated header: expected ${headerLen} bytes for ${ndims} dimensions, got ${bytes.length}`);
  }
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    if (d === 0) throw invalid(`dimension ${i} is 0`);
    dims.push(d);
  }

  // Exact doubles up to 2^53; anything larger cannot match a real file length anyway.
  const expected = headerLen + dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== expected) {
    const why = bytes.length < expected ? 'truncated' : `${bytes.length - expected} trailing bytes`;
    throw invalid(`expected ${expected} bytes for ${dims.join('x')}, got ${bytes.length} (${why})`);
  }
  return { dims, data: bytes.subarray(headerLen) };
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}
