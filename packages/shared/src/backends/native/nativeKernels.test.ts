import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../data/index.js';
import { initParams } from '../../model/params.js';
import { getPreset } from '../../model/presets.js';
import { Trainer } from '../../model/trainer.js';
import type { Dataset } from '../../data/index.js';
import { BN_MOMENTS, RELU_GRAD, batchNormTraining } from '../../ops/index.js';
import { selectBackend } from '../selectBackend.js';
import { NATIVE_ADDON_SPEC, type NativeAddon, probeNativeAddon, setNativeThreads } from './addon.js';
import { registerNativeKernels } from './register.js';

/*
 * Every native kernel against the cpu backend's own kernels under tfjs's stock gradients (and,
 * for the fused kernels, against the unfused ops): values and the gradients of sum(out · R) with
 * respect to every input, on odd shapes, strides, paddings and batch 1. The addon is wrapped so
 * that each case also checks which addon functions ran (the native path, not a fallback) or
 * that none did (the configurations the addon leaves to wasm's kernels).
 *
 * Skipped, saying so, where the addon is not built (CI builds it: `npm ci` runs build.mjs).
 */

const probe = await probeNativeAddon();
const title = probe.available ? `native kernels (${probe.isa}) against the cpu backend` : `native kernels: SKIPPED, the addon is not built here: ${probe.why}`;
// The reporter lists skipped suites only when verbose: say it where it is always seen.
if (!probe.available) console.warn(title);

/** Relative L2 error allowed (float32 summation orders differ; measured at most ~1e-6). */
const TOL = 1e-5;

type Fn = (...xs: tf.Tensor[]) => tf.Tensor;
type AddonFn = 'sgemm' | 'conv2d' | 'conv2dBackpropInput' | 'conv2dBackpropFilter';

/** Batch-norm statistics handed out during the current evaluation (disposed after it). */
const stats: tf.Tensor[] = [];

interface Case {
  name: string;
  shapes: number[][];
  /** On cpu: the stock kernels (or, for the fused kernels, the unfused ops). */
  ref: Fn;
  /** On native, when it differs from ref (the fused kernels, run directly as ganfleet's layers do). */
  native?: Fn;
  /** Forward only (tfjs has no gradient for it, e.g. dilation or fused transposed operands). */
  forwardOnly?: boolean;
  /** The addon functions that must run on native (forward and gradients). */
  calls: AddonFn[];
  /** The forward kernel is left to the kernel registered before (no addon call in the forward pass). */
  fallsBack?: boolean;
}

type Shape4 = [number, number, number, number];
type Pad = 'same' | 'valid' | tf.backend_util.ExplicitPadding;
const CONV_GRADS: AddonFn[] = ['conv2d', 'conv2dBackpropInput', 'conv2dBackpropFilter'];

const conv = (x: Shape4, f: Shape4, strides: number | [number, number], pad: Pad, dilations: number | [number, number] = 1): Case => ({
  name: `Conv2D x ${x.join('x')}, filter ${f.join('x')}, strides ${strides}, ${JSON.stringify(pad)}, dilations ${dilations}`,
  shapes: [x, f],
  ref: (a, b) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, pad, 'NHWC', dilations),
  forwardOnly: dilations !== 1,
  calls: dilations !== 1 ? ['conv2d'] : CONV_GRADS,
});

const deconv = (x: Shape4, f: Shape4, out: Shape4, strides: number | [number, number], pad: 'same' | 'valid'): Case => ({
  name: `Conv2DBackpropInput (transposed conv) x ${x.join('x')} -> ${out.join('x')}, filter ${f.join('x')}, strides ${strides}, ${pad}`,
  shapes: [x, f],
  ref: (a, b) => tf.conv2dTranspose(a as tf.Tensor4D, b as tf.Tensor4D, out, strides, pad),
  calls: CONV_GRADS,
});

type Activation = 'linear' | 'relu' | 'leakyrelu';
const activate = (y: tf.Tensor, activation: Activation): tf.Tensor =>
  activation === 'relu' ? tf.relu(y) : activation === 'leakyrelu' ? tf.leakyRelu(y, 0.2) : y;

const fusedConv = (x: Shape4, f: Shape4, strides: number, pad: 'same' | 'valid', activation: Activation, bias: number[] | null = [f[3]]): Case => ({
  name: `FusedConv2D x ${x.join('x')}, filter ${f.join('x')}, strides ${strides}, ${pad}, ${activation}${bias ? ` + bias ${bias.join('x')}` : ''}`,
  shapes: bias ? [x, f, bias] : [x, f],
  ref: (a, b, bias) =>
    activate(
      bias ? tf.add(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, pad), bias) : tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, pad),
      activation,
    ),
  native: (a, b, bias) => {
    const attrs = { strides, pad, dataFormat: 'NHWC', dilations: 1, activation, leakyreluAlpha: 0.2 };
    return tf.engine().runKernel(tf.FusedConv2D, { x: a, filter: b, ...(bias ? { bias } : {}) }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  },
  // ganfleet's gradient for the fused kernels covers the layers' own: linear or relu, with a bias.
  forwardOnly: activation === 'leakyrelu' || bias?.[0] !== f[3],
  calls: activation === 'leakyrelu' ? [] : bias?.[0] === f[3] ? CONV_GRADS : ['conv2d'],
  fallsBack: activation === 'leakyrelu',
});

/** Broadcast batches are forward only: tfjs's own gradient gets their shapes wrong on every backend. */
const matMul = (a: number[], b: number[], ta: boolean, tb: boolean, opts: { broadcast?: boolean; fallsBack?: boolean } = {}): Case => ({
  name: `BatchMatMul ${a.join('x')}${ta ? 'ᵀ' : ''} · ${b.join('x')}${tb ? 'ᵀ' : ''}`,
  shapes: [a, b],
  ref: (x, y) => tf.matMul(x, y, ta, tb),
  forwardOnly: Boolean(opts.broadcast || opts.fallsBack),
  calls: opts.fallsBack ? [] : ['sgemm'],
  fallsBack: Boolean(opts.fallsBack),
});

const fusedMatMul = (a: Shape3, b: Shape3, ta: boolean, tb: boolean, activation: Activation, bias: number[] | null): Case => ({
  name: `_FusedMatMul ${a.join('x')}${ta ? 'ᵀ' : ''} · ${b.join('x')}${tb ? 'ᵀ' : ''}, ${activation}${bias ? `, bias ${bias.join('x')}` : ''}`,
  shapes: bias ? [a, b, bias] : [a, b],
  ref: (x, y, z) => activate(z ? tf.add(tf.matMul(x, y, ta, tb), z) : tf.matMul(x, y, ta, tb), activation),
  native: (x, y, z) => {
    const attrs = { transposeA: ta, transposeB: tb, activation, leakyreluAlpha: 0.2 };
    return tf.engine().runKernel(tf._FusedMatMul, { a: x, b: y, ...(z ? { bias: z } : {}) }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  },
  // ganfleet's gradient covers the dense layers' own: no transposes, linear or relu, a bias per column.
  forwardOnly: ta || tb || activation === 'leakyrelu' || bias === null || bias[0] !== b[tb ? 1 : 2],
  calls: activation === 'leakyrelu' ? [] : ['sgemm'],
  fallsBack: activation === 'leakyrelu',
});
type Shape3 = [number, number, number];

/** Output extents whose forward conv gives back `size` (the smallest and the largest). */
function transposedSizes(size: number, kernel: number, stride: number, pad: 'same' | 'valid'): number[] {
  const lo = pad === 'same' ? (size - 1) * stride + 1 : (size - 1) * stride + kernel;
  return [...new Set([lo, lo + stride - 1])];
}

/** Transposed convs from an odd 3x5 input, batch 1: strides 1-3, kernels 1-5, 'same' and 'valid'. */
function transposedSweep(): Case[] {
  const cases: Case[] = [];
  for (const s of [1, 2, 3]) {
    for (const k of [1, 2, 3, 4, 5]) {
      for (const pad of ['same', 'valid'] as const) {
        const hs = transposedSizes(3, k, s, pad);
        const ws = transposedSizes(5, k, s, pad);
        hs.forEach((outH, i) => cases.push(deconv([1, 3, 5, 3], [k, k, 2, 3], [1, outH, ws[i % ws.length] as number, 2], s, pad)));
      }
    }
  }
  return cases;
}

const CASES: Case[] = [
  // The conv preset's layers (batch 1 or 3).
  conv([1, 28, 28, 1], [5, 5, 1, 32], 1, 'same'),
  conv([3, 14, 14, 32], [5, 5, 32, 64], 1, 'same'),
  conv([2, 28, 28, 16], [1, 1, 16, 1], 1, 'same'),
  deconv([2, 7, 7, 64], [5, 5, 32, 64], [2, 14, 14, 32], 2, 'same'),
  deconv([1, 14, 14, 32], [5, 5, 16, 32], [1, 28, 28, 16], 2, 'same'),
  // Odd sizes, strides and paddings.
  conv([1, 7, 9, 3], [3, 3, 3, 5], 1, 'same'),
  conv([2, 8, 8, 4], [5, 5, 4, 6], 2, 'same'),
  conv([1, 11, 10, 2], [4, 3, 2, 3], 3, 'valid'),
  conv([1, 16, 16, 3], [3, 3, 3, 4], 2, 'valid'),
  conv([1, 9, 15, 2], [2, 2, 2, 3], 3, 'same'),
  conv([1, 17, 5, 20], [3, 3, 20, 17], [2, 1], 'same'),
  conv(
    [2, 9, 10, 3],
    [3, 2, 3, 4],
    [1, 2],
    [
      [0, 0],
      [1, 0],
      [2, 1],
      [0, 0],
    ],
  ),
  conv([1, 9, 9, 3], [3, 3, 3, 2], 1, 'same', 2),
  conv([2, 10, 11, 3], [2, 3, 3, 2], 1, 'valid', [2, 1]),
  ...transposedSweep(),
  // Fused conv layers: the epilogue, and what falls back.
  fusedConv([2, 9, 9, 3], [5, 5, 3, 8], 1, 'same', 'relu'),
  fusedConv([1, 14, 14, 32], [5, 5, 32, 64], 1, 'same', 'relu'),
  fusedConv([1, 10, 7, 4], [3, 3, 4, 5], 2, 'valid', 'linear'),
  fusedConv([1, 10, 7, 4], [3, 3, 4, 5], 2, 'valid', 'linear', null),
  fusedConv([1, 8, 8, 3], [3, 3, 3, 4], 1, 'same', 'leakyrelu'),
  // Matrix products: every transpose, odd sizes, batches, broadcasting, the dense layers at batch 1.
  matMul([5, 7], [7, 3], false, false),
  matMul([5, 7], [3, 7], false, true),
  matMul([7, 5], [7, 3], true, false),
  matMul([7, 5], [3, 7], true, true),
  matMul([3, 5, 7], [3, 7, 2], false, false),
  matMul([3, 7, 5], [3, 2, 7], true, true),
  matMul([3, 5, 7], [7, 2], false, false, { broadcast: true }),
  matMul([3, 5, 7], [3, 7], false, true, { broadcast: true }),
  matMul([1, 5, 7], [4, 7, 3], false, false, { broadcast: true }),
  matMul([2, 3, 5, 7], [2, 3, 4, 7], false, true),
  matMul([1, 100], [100, 1024], false, false),
  matMul([1, 1024], [1024, 3136], false, false),
  matMul([1, 3136], [3136, 1024], false, false),
  matMul([1, 1024], [1024, 1], false, false),
  matMul([33, 1], [1, 17], false, false),
  // Broadcasting that would reorder matrices: wasm's kernel (ganfleet's) handles it, forward only.
  matMul([2, 1, 5, 7], [1, 3, 7, 4], false, false, { broadcast: true, fallsBack: true }),
  fusedMatMul([1, 5, 7], [1, 7, 3], false, false, 'relu', [3]),
  fusedMatMul([1, 64, 1024], [1, 1024, 33], false, false, 'linear', [33]),
  fusedMatMul([1, 5, 7], [1, 7, 3], false, false, 'linear', null),
  fusedMatMul([2, 7, 5], [2, 3, 7], true, true, 'relu', [3]),
  fusedMatMul([1, 5, 7], [1, 7, 3], false, false, 'leakyrelu', [3]),
  // One bias value for all columns: the addon gets it spread (wasm's own kernel would read past it).
  fusedMatMul([1, 5, 7], [1, 7, 3], false, false, 'relu', [1]),
  fusedConv([1, 6, 6, 2], [3, 3, 2, 4], 1, 'same', 'relu', [1]),
  // The JavaScript kernels around the addon's: batch norm, bias-gradient sums, 2x2 average pooling.
  ...[
    [[5, 7, 3, 4], true],
    [[9, 11], false],
    [[1, 6, 5, 3], true],
    [[64, 33], true],
  ].map(([shape, relu]): Case => ({
    name: `${BN_MOMENTS} etc. (batch norm${relu ? ' + relu' : ''}) x ${(shape as number[]).join('x')}`,
    shapes: [shape as number[], [(shape as number[]).at(-1) as number], [(shape as number[]).at(-1) as number]],
    ref: (x, gamma, beta) =>
      batchNormTraining(x as tf.Tensor, gamma as tf.Tensor, beta as tf.Tensor, relu as boolean, (m) => {
        stats.push(m);
      }),
    calls: [],
  })),
  { name: 'Sum over all axes but the last', shapes: [[3, 5, 4, 6]], ref: (x) => tf.sum(x, [0, 1, 2]), calls: [] },
  { name: 'Sum over all axes but the last, kept', shapes: [[7, 9]], ref: (x) => tf.sum(x, 0, true), calls: [] },
  { name: 'Sum over other axes (wasm)', shapes: [[3, 5, 4]], ref: (x) => tf.sum(x, [1]), calls: [] },
  { name: 'AvgPool 2x2/2 x 2x8x8x3', shapes: [[2, 8, 8, 3]], ref: (x) => tf.avgPool(x as tf.Tensor4D, 2, 2, 'valid'), calls: [] },
  { name: 'AvgPool 2x3/[2,3] x 1x7x10x2 (remainder)', shapes: [[1, 7, 10, 2]], ref: (x) => tf.avgPool(x as tf.Tensor4D, [2, 3], [2, 3], 'valid'), calls: [] },
  { name: 'AvgPool 3x3/1 same (wasm)', shapes: [[1, 6, 6, 2]], ref: (x) => tf.avgPool(x as tf.Tensor4D, 3, 1, 'same'), calls: [] },
  {
    name: `${RELU_GRAD} (relu's gradient)`,
    shapes: [[3, 7, 5]],
    ref: (x) => tf.relu(x),
    calls: [],
  },
];

function randomArray(seed: number, size: number): Float32Array {
  return new Rng(seed).fillNormal(new Float32Array(size));
}

/** Forward output and the gradients of sum(output · R), R a fixed random tensor, w.r.t. every input. */
function evaluate(f: Fn, c: Case, seed: number): Float32Array[] {
  const tensors = tf.tidy(() => {
    const xs = c.shapes.map((shape, i) => tf.tensor(randomArray(seed + i, tf.util.sizeFromShape(shape)), shape));
    if (c.forwardOnly) return [f(...xs)];
    let out: tf.Tensor = tf.scalar(0);
    const grads = tf.grads((...vs: tf.Tensor[]) => {
      out = tf.keep(f(...vs));
      return tf.sum(tf.mul(out, tf.tensor(randomArray(seed + 99, out.size), out.shape)));
    })(xs);
    return [out, ...grads];
  });
  const data = [...tensors, ...stats].map((t) => t.dataSync() as Float32Array);
  tf.dispose([...tensors, ...stats.splice(0)]);
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

/** The real addon with every function call counted by name. */
function countingAddon(real: NativeAddon, calls: Map<string, number>): NativeAddon {
  return Object.fromEntries(
    Object.entries(real).map(([name, v]) => [
      name,
      typeof v === 'function'
        ? (...args: unknown[]) => {
            calls.set(name, (calls.get(name) ?? 0) + 1);
            return (v as (...a: unknown[]) => unknown)(...args);
          }
        : v,
    ]),
  ) as unknown as NativeAddon;
}

const dataset: Dataset = {
  name: 'synthetic',
  split: 'train',
  count: 32,
  height: 28,
  width: 28,
  images: Float32Array.from({ length: 32 * 784 }, (_, i) => Math.sin(i) * 0.9),
  labels: new Uint8Array(32),
  fingerprint: 'synthetic',
};

describe.skipIf(!probe.available)(title, () => {
  const references = new Map<string, Float32Array[]>();
  const calls = new Map<string, number>();
  let real: NativeAddon;

  beforeAll(async () => {
    await tf.setBackend('cpu');
    await selectBackend('cpu'); // registers ganfleet's gradients (fused layers) for the references
    CASES.forEach((c, i) => references.set(c.name, evaluate(c.ref, c, 1000 * i)));
    real = (await import(NATIVE_ADDON_SPEC)) as NativeAddon;
    const info = await selectBackend('native');
    expect(info.name).toBe('native');
    expect(tf.getBackend()).toBe('wasm');
    registerNativeKernels(countingAddon(real, calls));
  });

  afterAll(async () => {
    setNativeThreads(1);
    await selectBackend('cpu');
  });

  it('case names are unique and the sweep covers strides 1-3 and kernels 1-5', () => {
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
    expect(CASES.filter((c) => c.name.startsWith('Conv2DBackpropInput')).length).toBeGreaterThanOrEqual(40);
  });

  CASES.forEach((c, i) => {
    it(c.name, async () => {
      await tf.setBackend('wasm');
      calls.clear();
      const actual = evaluate(c.native ?? c.ref, c, 1000 * i);
      const expected = references.get(c.name) ?? [];
      expect(actual.length).toBe(expected.length);
      // [forward, d/dinput0, ..., then any batch-norm statistics]
      expected.forEach((e, j) => expect(relL2(actual[j] ?? new Float32Array(), e), j === 0 ? 'forward' : `output ${j}`).toBeLessThan(TOL));
      expect([...calls.keys()]).toEqual(expect.arrayContaining(c.calls));
      if (c.fallsBack) {
        calls.clear();
        evaluate(c.native ?? c.ref, { ...c, forwardOnly: true }, 1000 * i);
        expect([...calls.keys()].filter((k) => k !== 'setThreads')).toEqual([]);
      }
    });
  });

  it('registers RELU_GRAD (so the layers run fused) and puts wasm back as it was when wasm is selected', async () => {
    const fusedConv2D = tf.getKernel(tf.FusedConv2D, 'wasm')?.kernelFunc;
    expect(tf.getKernel(RELU_GRAD, 'wasm')).toBeDefined();
    expect(tf.getKernel(BN_MOMENTS, 'wasm')).toBeDefined();
    await selectBackend('wasm');
    expect(tf.getKernel(RELU_GRAD, 'wasm')).toBeUndefined();
    expect(tf.getKernel(BN_MOMENTS, 'wasm')).toBeUndefined();
    for (const name of [tf.Sum, tf.AvgPoolGrad, tf.Identity]) expect(tf.getKernel(name, 'wasm')?.kernelFunc, name).not.toBe(undefined);
    expect(tf.getKernel(tf.FusedConv2D, 'wasm')?.kernelFunc).not.toBe(fusedConv2D);
    expect(tf.getKernel(tf.FusedConv2D, 'wasm')?.setupFunc).toBeDefined(); // wasm's own again
    await selectBackend('native');
    registerNativeKernels(countingAddon(real, calls));
    expect(tf.getKernel(RELU_GRAD, 'wasm')).toBeDefined();
  });

  it('gives bit-identical results for 1, 2 and 3 threads', async () => {
    await tf.setBackend('wasm');
    const run = (threads: number): Float32Array[] => {
      setNativeThreads(threads);
      const cases = [CASES[1], CASES[3], matMul([64, 3136], [3136, 1024], false, false), matMul([64, 1024], [64, 3136], true, false)] as Case[];
      return cases.flatMap((c, i) => evaluate(c.ref, c, 77 + i));
    };
    const one = run(1);
    for (const threads of [2, 3]) {
      const other = run(threads);
      one.forEach((a, i) => expect(Buffer.from((other[i] as Float32Array).buffer).equals(Buffer.from(a.buffer)), `threads ${threads}, tensor ${i}`).toBe(true));
    }
    setNativeThreads(1);
  });

  it('conv: leaves no tensor and no heap allocation behind over many steps', async () => {
    await tf.setBackend('wasm');
    const preset = getPreset('conv');
    const trainer = new Trainer(preset, dataset);
    trainer.update(initParams(preset, 1));
    const indices = Uint32Array.from([1, 5, 9, 30]);
    const step = async (i: number) => {
      const phase = i % 2 ? 'G' : 'D';
      const r = await trainer.compute({ phase, batchSize: 4, seed: i, ...(phase === 'D' ? { indices } : {}) });
      trainer.update(new Map([...r.grads].slice(0, 2)));
    };
    calls.clear();
    await step(0);
    await step(1);
    // The conv model's layers ran on the addon, fused where ganfleet's layers fuse.
    expect(calls.get('conv2d')).toBeGreaterThan(0);
    expect(calls.get('conv2dBackpropInput')).toBeGreaterThan(0);
    expect(calls.get('conv2dBackpropFilter')).toBeGreaterThan(0);
    expect(calls.get('sgemm')).toBeGreaterThan(0);
    const before = tf.memory().numTensors;
    const dataIds = tf.engine().backend.numDataIds();
    for (let i = 2; i < 22; i++) await step(i);
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.engine().backend.numDataIds()).toBe(dataIds);
    trainer.dispose();
    expect(tf.memory().numTensors).toBe(before - preset.params.length);
  });
});
