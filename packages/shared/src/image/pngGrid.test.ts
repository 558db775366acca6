import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeGridPng, writeGridPng } from './pngGrid.js';

/** pngjs decodes to RGBA; a gray pixel has r = g = b. */
function pixel(png: PNG, x: number, y: number): number {
  const i = (y * png.width + x) * 4;
  expect(png.data[i + 1]).toBe(png.data[i]);
  return png.data[i] as number;
}

function ramp(n: number, h: number, w: number): Float32Array {
  return Float32Array.from({ length: n * h * w }, (_, i) => ((i * 37) % 255) / 127.5 - 1);
}

describe('encodeGridPng', () => {
  it('lays 64 images out as an 8x8 grid with 2px dark padding', () => {
    const images = ramp(64, 28, 28);
    const png = PNG.sync.read(Buffer.from(encodeGridPng(images, 64, 28, 28)));
    expect([png.width, png.height]).toEqual([2 + 8 * 30, 2 + 8 * 30]);
    expect(png.colorType).toBe(0);
    // Image 10 is row 1, column 2; its pixel (y=5, x=7) lands at (2 + 2*30 + 7, 2 + 30 + 5).
    const v = images[10 * 784 + 5 * 28 + 7] as number;
    expect(pixel(png, 2 + 2 * 30 + 7, 2 + 30 + 5)).toBe(Math.round((v + 1) * 127.5));
    expect(pixel(png, 0, 0)).toBe(0);
    expect(pixel(png, 31, 40)).toBe(0);
  });

  it('clamps out-of-range values and honours cols, pad and scale', () => {
    const images = Float32Array.from([-3, 1, 0.5, 7, NaN, -1]); // three 1x2 images
    const png = PNG.sync.read(Buffer.from(encodeGridPng(images, 3, 1, 2, { cols: 2, pad: 1, scale: 2 })));
    // 2 columns of 4px tiles and 2 rows of 2px tiles, 1px padding.
    expect([png.width, png.height]).toEqual([1 + 2 * 5, 1 + 2 * 3]);
    expect(pixel(png, 1, 1)).toBe(0); // -3 clamps to black
    expect(pixel(png, 3, 2)).toBe(255); // 1, upscaled
    expect(pixel(png, 6, 1)).toBe(191); // 0.5 -> round(191.25)
    expect(pixel(png, 8, 2)).toBe(255); // 7 clamps to white
    expect(pixel(png, 1, 4)).toBe(0); // NaN renders black
    expect(pixel(png, 7, 4)).toBe(0); // the unused fourth cell stays dark
  });

  it('rejects a size mismatch', () => {
    expect(() => encodeGridPng(new Float32Array(10), 2, 2, 2)).toThrow(/10 values for 2 images of 2x2/);
    expect(() => encodeGridPng(new Float32Array(4), 1, 2, 2, { scale: 0 })).toThrow(/scale must be an integer >= 1/);
  });
});

describe('writeGridPng', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ganfleet-png-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates parent directories and leaves no temp file behind', async () => {
    const images = ramp(4, 3, 3);
    const path = join(dir, 'a', 'b', 'grid.png');
    await writeGridPng(path, images, 4, 3, 3);
    expect(new Uint8Array(await readFile(path))).toEqual(new Uint8Array(encodeGridPng(images, 4, 3, 3)));
    expect(await readdir(join(dir, 'a', 'b'))).toEqual(['grid.png']);
  });
});
