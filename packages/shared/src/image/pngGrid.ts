/* Renders a batch of grayscale images (e.g. generator samples) as one PNG contact sheet. */

import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PNG } from 'pngjs';
import writeFileAtomic from 'write-file-atomic';
import { GanError } from '../wire/index.js';

export interface GridOptions {
  /** Images per row; defaults to ceil(sqrt(n)), i.e. 8x8 for 64 images. */
  cols?: number;
  /** Dark pixels around and between tiles; default 2. */
  pad?: number;
  /** Integer nearest-neighbour upscaling of each tile; default 1. */
  scale?: number;
}

/**
 * Encodes n images of h*w pixels in [-1, 1] (row-major, back to back) as an 8-bit grayscale PNG
 * grid. Values outside [-1, 1] are clamped; NaN renders black.
 */
export function encodeGridPng(images: Float32Array, n: number, h: number, w: number, opts: GridOptions = {}): Uint8Array {
  const cols = opts.cols ?? Math.ceil(Math.sqrt(n));
  const pad = opts.pad ?? 2;
  const scale = opts.scale ?? 1;
  const limits: [string, number, number][] = [
    ['n', n, 1],
    ['h', h, 1],
    ['w', w, 1],
    ['cols', cols, 1],
    ['pad', pad, 0],
    ['scale', scale, 1],
  ];
  for (const [what, v, min] of limits) {
    if (!Number.isInteger(v) || v < min) {
      throw new GanError('INTERNAL', `encodeGridPng: ${what} must be an integer >= ${min}, got ${v}`);
    }
  }
  if (images.length !== n * h * w) {
    throw new GanError('INTERNAL', `encodeGridPng: ${images.length} values for ${n} images of ${h}x${w}`);
  }

  const rows = Math.ceil(n / cols);
  const tileH = h * scale;
  const tileW = w * scale;
  const width = pad + cols * (tileW + pad);
  const height = pad + rows * (tileH + pad);
  // Zero-filled, so padding and unused cells are black.
  const gray = Buffer.alloc(width * height);
  for (let i = 0; i < n; i++) {
    const x0 = pad + (i % cols) * (tileW + pad);
    const y0 = pad + Math.floor(i / cols) * (tileH + pad);
    for (let y = 0; y < tileH; y++) {
      const src = i * h * w + Math.floor(y / scale) * w;
      const dst = (y0 + y) * width + x0;
      for (let x = 0; x < tileW; x++) gray[dst + x] = toByte(images[src + Math.floor(x / scale)] as number);
    }
  }

  const png = new PNG();
  png.width = width;
  png.height = height;
  png.data = gray;
  // Input and output both 8-bit grayscale, so pngjs packs the buffer as is (1 byte per pixel).
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8 });
}

/** Writes encodeGridPng's output to `path`, creating parent directories; atomic, so the dashboard never serves half a file. */
export async function writeGridPng(path: string, images: Float32Array, n: number, h: number, w: number, opts?: GridOptions): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, Buffer.from(encodeGridPng(images, n, h, w, opts)));
}

function toByte(v: number): number {
  const b = Math.round((v + 1) * 127.5);
  return b > 255 ? 255 : b > 0 ? b : 0;
}
