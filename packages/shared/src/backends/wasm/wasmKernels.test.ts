import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../data/index.js';
import { selectBackend } from '../selectBackend.js';
import { conv2dTransposeSubPixel } from './convFormulations.js';
import { registerWasmKernels } from './wasmKernels.js';

/*
 * The references are the cpu backend's own kernels (Conv2DBackpropFilter, Conv2DBackpropInput,
 * flagged matMul) under tfjs's stock gradients, computed in beforeAll; every case is then
 * recomputed on wasm, where ganfleet's kernels replace or add those kernels and the same stock
 * gradients run on them.
 */

/** Relative L2 error allowed; float32 summation-order differences measured at most 1.5e-6. */
const TOL = 1e-5;
const BATCH = 2;

interface Case {
  name: string;
  shapes: number[][];
  /** The stock formulation: computed on cpu before the patches are registered. */
  ref: (...xs: tf.Tensor[]) => tf.Tensor;
}

type Pad = 'same' | 'valid' | tf.backend_util.ExplicitPadding;
type Shape4 = [number, number, number, number];

const conv = (x: Shape4, f: Shape4, strides: number | [number, number], pad: Pad, name: string): Case => ({
  name: `Conv2D ${name}: x ${x.join('x')}, filter ${f.join('x')}, strides ${strides}, ${JSON.stringify(pad)}`,
  shapes: [x, f],
  ref: (a, b) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, pad),
});

/** conv2dTranspose from x to out: the Conv2DBackpropInput kernel forwards, and its gradients. */
const deconv = (x: Shape4, f: Shape4, out: Shape4, strides: number | [number, number], pad: 'same' | 'valid', name: string): Case => ({
  name: `Conv2DBackpropInput ${name}: x ${x.join('x')} -> ${out.join('x')}, filter ${f.join('x')}, strides ${strides}, ${pad}`,
  shapes: [x, f],
  ref: (a, b) => tf.conv2dTranspose(a as tf.Tensor4D, b as tf.Tensor4D, out, strides, pad),
});

/**
 * Output extents of conv2dTranspose from `size` inputs: every extent whose forward conv gives
 * back `size` under that padding (the smallest and the largest, so that both the exact and the
 * cropped sub-pixel layouts run).
 */
function transposedSizes(size: number, kernel: number, stride: number, pad: 'same' | 'valid'): number[] {
  const lo = pad === 'same' ? (size - 1) * stride + 1 : (size - 1) * stride + kernel;
  return [...new Set([lo, lo + stride - 1])];
}

/**
 * conv2dTranspose on odd sizes, batch 1: strides 1-3 (and unequal ones), kernels 1-5, 'valid'
 * and 'same', including filters smaller than the stride (phases no tap reaches).
 */
function transposedSweep(): Case[] {
  const cases: Case[] = [];
  const strides: [number, number][] = [
    [1, 1],
    [2, 2],
    [3, 3],
    [2, 3],
  ];
  for (const [sh, sw] of strides) {
    for (const k of [1, 2, 3, 4, 5]) {
      for (const pad of ['same', 'valid'] as const) {
        const hs = transposedSizes(3, k, sh, pad);
        const ws = transposedSizes(5, k + (sh === sw ? 0 : 1), sw, pad);
        for (const [i, outH] of hs.entries()) {
          const outW = ws[i % ws.length] as number;
          const kw = k + (sh === sw ? 0 : 1);
          cases.push(deconv([1, 3, 5, 3], [k, kw, 2, 3], [1, outH, outW, 2], sh === sw ? sh : [sh, sw], pad, `sweep ${k}x${kw}`));
        }
      }
    }
  }
  return cases;
}

const matMul = (a: number[], b: number[], ta: boolean, tb: boolean): Case => ({
  name: `BatchMatMul ${a.join('x')}${ta ? 'ᵀ' : ''} · ${b.join('x')}${tb ? 'ᵀ' : ''}`,
  shapes: [a, b],
  ref: (x, y) => tf.matMul(x, y, ta, tb),
});

const CASES: Case[] = [
  conv([BATCH, 28, 28, 1], [5, 5, 1, 32], 1, 'same', 'D conv1'),
  conv([BATCH, 14, 14, 32], [5, 5, 32, 64], 1, 'same', 'D conv2'),
  conv([BATCH, 28, 28, 16], [1, 1, 16, 1], 1, 'same', 'G output'),
  conv([BATCH, 14, 14, 32], [5, 5, 32, 64], 2, 'same', 'strided'),
  // The last input row and column are never read: exercises the crop path.
  conv([BATCH, 16, 16, 3], [3, 3, 3, 4], 2, 'valid', 'unread edge'),
  conv(
    [BATCH, 9, 10, 3],
    [3, 2, 3, 4],
    [1, 2],
    [
      [0, 0],
      [1, 0],
      [2, 1],
      [0, 0],
    ],
    'explicit pad',
  ),
  deconv([BATCH, 7, 7, 64], [5, 5, 32, 64], [BATCH, 14, 14, 32], 2, 'same', 'G deconv1'),
  deconv([BATCH, 14, 14, 32], [5, 5, 16, 32], [BATCH, 28, 28, 16], 2, 'same', 'G deconv2'),
  deconv([BATCH, 7, 7, 4], [3, 3, 3, 4], [BATCH, 15, 15, 3], 2, 'valid', 'valid'),
  // A 1x1 filter with stride 2 leaves output rows that no input reaches (negative padding).
  deconv([BATCH, 7, 7, 4], [1, 1, 3, 4], [BATCH, 13, 13, 3], 2, 'valid', 'sparse'),
  ...transposedSweep(),
  matMul([BATCH, 100], [100, 1024], false, false),
  matMul([BATCH, 1024], [1024, 3136], false, false),
  matMul([BATCH, 3136], [3136, 1024], false, false),
  matMul([BATCH, 1024], [1024, 1], false, false),
  matMul([3, 5], [4, 5], false, true),
  matMul([5, 3], [5, 4], true, false),
  matMul([5, 3], [4, 5], true, true),
  matMul([2, 3, 5], [2, 5, 40], false, false),
  matMul([2, 50, 3], [2, 4, 50], true, true),
];

function randomArray(seed: number, size: number): Float32Array {
  return new Rng(seed).fillNormal(new Float32Array(size));
}

/** Forward output and the gradients of sum(output * R), R a fixed random tensor, w.r.t. every input. */
function evaluate(f: (...xs: tf.Tensor[]) => tf.Tensor, c: Case, seed: number): Float32Array[] {
  // tidy returns tensors, not their data: it would walk a returned typed array element by element.
  const tensors = tf.tidy(() => {
    const xs = c.shapes.map((shape, i) => tf.tensor(randomArray(seed + i, tf.util.sizeFromShape(shape)), shape));
    let out: tf.Tensor = tf.scalar(0);
    const grads = tf.grads((...vs: tf.Tensor[]) => {
      out = tf.keep(f(...vs)); // grads disposes what f made, but for its result
      return tf.sum(tf.mul(out, tf.tensor(randomArray(seed + 99, out.size), out.shape)));
    })(xs);
    return [out, ...grads];
  });
  const data = tensors.map((t) => t.dataSync() as Float32Array);
  tf.dispose(tensors);
  return data;
}

function relL2(actual: Float32Array, expected: Float32Array): number {
  expect(actual.length).toBe(expected.length);
  let diff = 0;
  let norm = 0;
  expected.forEach((e, i) => {
    diff += (e - (actual[i] ?? NaN)) ** 2;
    norm += e * e;
  });
  return Math.sqrt(diff / Math.max(norm, 1e-30));
}

function expectClose(actual: Float32Array[], expected: Float32Array[]): void {
  expect(actual.length).toBe(expected.length);
  // [forward, d/dinput0, d/dinput1]; a label per tensor makes a failure say which one.
  const errors = Object.fromEntries(expected.map((e, i) => [i === 0 ? 'forward' : `grad${i - 1}`, relL2(actual[i] ?? new Float32Array(), e)]));
  for (const [what, err] of Object.entries(errors)) expect(err, what).toBeLessThan(TOL);
}

const references = new Map<string, Float32Array[]>();

beforeAll(async () => {
  await tf.setBackend('cpu');
  CASES.forEach((c, i) => references.set(c.name, evaluate(c.ref, c, 1000 * i)));
  const info = await selectBackend('wasm');
  expect(info.name).toBe('wasm');
});

describe("ganfleet's wasm kernels", () => {
  it('are registered by selecting wasm, replacing the stock ones there and on no other backend', () => {
    // Without ours the Conv2D filter gradient would need this kernel, which wasm lacks.
    expect(tf.getKernel(tf.Conv2DBackpropFilter, 'wasm')).toBeDefined();
    expect(tf.getKernel(tf.Conv2DBackpropFilter, 'cpu')?.kernelFunc).not.toBe(tf.getKernel(tf.Conv2DBackpropFilter, 'wasm')?.kernelFunc);
    const ours = tf.getKernel(tf.Conv2DBackpropInput, 'wasm')?.kernelFunc;
    // Registering again changes nothing (BatchMatMul still wraps wasm's own kernel, as the cases below check).
    registerWasmKernels();
    expect(tf.getKernel(tf.Conv2DBackpropInput, 'wasm')?.kernelFunc).toBe(ours);
  });

  CASES.forEach((c, i) => {
    it(c.name, async () => {
      await tf.setBackend('wasm');
      expectClose(evaluate(c.ref, c, 1000 * i), references.get(c.name) ?? []);
    });
  });

  it('throw a clear error for unsupported configurations', async () => {
    await tf.setBackend('wasm');
    const x = tf.ones([1, 8, 8, 2]);
    const dy = tf.ones([1, 8, 8, 2]);
    const attrs = { strides: 1, pad: 'same', dataFormat: 'NCHW', filterShape: [3, 3, 2, 2] };
    expect(() => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, attrs as unknown as tf.NamedAttrMap)).toThrow(
      /Conv2DBackpropFilter: dataFormat NCHW \(only NHWC\) is not supported/,
    );
    const a = tf.ones([2, 3, 5]);
    const b = tf.ones([5, 4]);
    expect(() => tf.grad((v: tf.Tensor) => tf.sum(tf.matMul(v, b)))(a)).toThrow(/BatchMatMul: batch broadcasting/);
    tf.dispose([x, dy, a, b]);
  });
});

describe('conv2dTransposeSubPixel', () => {
  it('has cases for every stride phase layout', () => {
    // The sweep above: 4 stride pairs x 5 kernels x 2 paddings, one or two output sizes each.
    expect(CASES.filter((c) => c.name.includes('sweep')).length).toBeGreaterThanOrEqual(60);
  });

  it('matches tf.conv2dTranspose on cpu, forward', async () => {
    await tf.setBackend('cpu');
    const rng = new Rng(7);
    const configs: [Shape4, Shape4, Shape4, number | [number, number], 'same' | 'valid'][] = [
      [[3, 7, 7, 64], [5, 5, 32, 64], [3, 14, 14, 32], 2, 'same'],
      [[3, 14, 14, 32], [5, 5, 16, 32], [3, 28, 28, 16], 2, 'same'],
      [[2, 5, 6, 3], [3, 4, 2, 3], [2, 5, 11, 2], [1, 2], 'same'],
      [[2, 4, 4, 3], [2, 2, 2, 3], [2, 9, 9, 2], 2, 'valid'],
      [[1, 4, 3, 3], [5, 4, 2, 3], [1, 14, 8, 2], [3, 2], 'valid'],
      [[1, 5, 5, 2], [2, 2, 3, 2], [1, 13, 13, 3], 3, 'same'],
    ];
    for (const [xs, fs, out, strides, pad] of configs) {
      const x = tf.tensor4d(rng.fillNormal(new Float32Array(tf.util.sizeFromShape(xs))), xs);
      const f = tf.tensor4d(rng.fillNormal(new Float32Array(tf.util.sizeFromShape(fs))), fs);
      const expected = tf.conv2dTranspose(x, f, out, strides, pad);
      const actual = conv2dTransposeSubPixel(x, f, out, strides, pad);
      expect(actual.shape).toEqual(out);
      expect(relL2(actual.dataSync() as Float32Array, expected.dataSync() as Float32Array), JSON.stringify(xs)).toBeLessThan(TOL);
      tf.dispose([x, f, expected, actual]);
    }
  });

  it('rejects an input that does not fit the output shape', () => {
    const x = tf.zeros([1, 6, 7, 4]) as tf.Tensor4D;
    const f = tf.zeros([5, 5, 3, 4]) as tf.Tensor4D;
    expect(() => conv2dTransposeSubPixel(x, f, [1, 14, 14, 3], 2, 'same')).toThrow(/do not fit outputShape/);
    tf.dispose([x, f]);
  });
});
