import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../data/index.js';
import { batchNorm, conv, dense } from '../../model/layers.js';
import type { Phase } from '../../wire/index.js';
import { type BatchNormStat, discriminatorLoss, generatorLoss, getPreset, initParams, phaseGradients, toTensors } from '../../model/index.js';
import { BN_MOMENTS, RELU_GRAD, hasKernel } from '../../ops/index.js';
import type { Importer } from '../selectBackend.js';
import { type WebGpuSummary, activateWebGpu } from './activateWebGpu.js';
import { groupSize, rowSplit } from './channelReduce.js';
import { recordPrograms } from './program.js';
import { splitCount, useWebGpuKernels } from './webgpuKernels.js';

type Shape4D = [number, number, number, number];

/*
 * The real webgpu backend against the cpu one, on whatever Vulkan device Dawn finds. Without one
 * (no libvulkan1, no driver, or Debian 12's own lavapipe, Mesa 22.3, which Dawn rejects for lacking
 * shaderSampledImageArrayDynamicIndexing) the tests are skipped and the reason is in their title.
 * The lavapipe of bookworm-backports (Mesa 25) runs them on the CPU, in about 35 s on 2 cores.
 */

/** A non-literal import, so type-checking does not need the optional packages installed. */
const load: Importer = (spec) => import(spec);

/** The adapter's storage-buffer limit, or why there is no usable adapter. */
async function probe(): Promise<{ storageBuffers: number } | { skip: string }> {
  try {
    const dawn = (await load('webgpu')) as { create(flags: string[]): { requestAdapter(): Promise<{ limits: Record<string, number> } | null> } };
    const adapter = await dawn.create([]).requestAdapter();
    return adapter ? { storageBuffers: adapter.limits.maxStorageBuffersPerShaderStage as number } : { skip: 'Dawn found no Vulkan adapter' };
  } catch (err) {
    return { skip: `package webgpu does not load: ${String(err).split('\n')[0]}` };
  }
}

const found = await probe();
const skip = 'skip' in found ? found.skip : undefined;
const title = skip ? `webgpu backend (skipped: ${skip})` : 'webgpu backend';

/**
 * ||a - b|| / ||a|| over all of a phase's gradients together: per tensor, the biases before batch
 * norm have a true gradient of zero, so their own relative error is rounding noise over noise.
 */
function relativeL2(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let diff = 0;
  let norm = 0;
  for (const [name, va] of a) {
    const vb = b.get(name);
    if (!vb || vb.length !== va.length) throw new Error(`${name} missing or misshapen`);
    for (let i = 0; i < va.length; i++) {
      diff += ((va[i] as number) - (vb[i] as number)) ** 2;
      norm += (va[i] as number) ** 2;
    }
  }
  return Math.sqrt(diff / norm);
}

async function gradients(backend: string, presetName: string, phase: Phase, batch: number): Promise<Map<string, Float32Array>> {
  await tf.setBackend(backend);
  const preset = getPreset(presetName);
  const [h, w, c] = preset.imageShape;
  const rng = new Rng(7);
  const noise = rng.fillNormal(new Float32Array(batch * preset.noiseDim));
  const real = Float32Array.from({ length: batch * h * w * c }, () => rng.uniform() * 2 - 1);
  const params = toTensors(preset, initParams(preset, 3));
  // Arrays, not the Maps phaseGradients returns: tidy keeps only tensors it can find in its result.
  const r = tf.tidy(() => {
    const out = phaseGradients(preset, params, phase, tf.tensor2d(noise, [batch, preset.noiseDim]), tf.tensor4d(real, [batch, h, w, c]));
    return { loss: out.loss, grads: [...out.grads], stats: [...out.stats.values()] };
  });
  try {
    return new Map(await Promise.all(r.grads.map(async ([n, t]) => [n, (await t.data()) as Float32Array] as const)));
  } finally {
    tf.dispose([r.loss, ...r.grads.map(([, t]) => t), ...r.stats, ...params.values()]);
  }
}

describe.skipIf(skip !== undefined)(title, () => {
  let summary: WebGpuSummary;

  beforeAll(async () => {
    summary = await activateWebGpu(load, { allowSoftwareAdapter: true });
  });

  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it("gets a device with the adapter's storage-buffer limit, which AddN of many tensors needs", async () => {
    const limit = 'storageBuffers' in found ? found.storageBuffers : 0;
    expect(summary.limits.maxStorageBuffersPerShaderStage).toBe(limit);
    // Up to 12 inputs and the output: on most adapters more storage buffers than WebGPU's default of 8.
    const n = Math.min(12, limit - 1);
    await tf.setBackend('webgpu');
    const sum = tf.addN(Array.from({ length: n }, (_, i) => tf.fill([4], i + 1)));
    expect(Array.from(await sum.data())).toEqual(new Array(4).fill((n * (n + 1)) / 2));
    sum.dispose();
  });

  // Float32 on both; only the order of summation differs (lavapipe: ~1e-6, an H100: ~3e-3).
  it.each([
    ['mlp', 'D', 16],
    ['mlp', 'G', 16],
    ['conv', 'D', 2],
    ['conv', 'G', 2],
  ] as const)('%s %s gradients match the cpu backend', async (preset, phase, batch) => {
    const expected = await gradients('cpu', preset, phase, batch);
    const actual = await gradients('webgpu', preset, phase, batch);
    expect(relativeL2(expected, actual)).toBeLessThan(1e-2);
  });
});

describe.skipIf(skip !== undefined)(`${title}: ganfleet's kernels`, () => {
  beforeAll(async () => {
    await activateWebGpu(load, { allowSoftwareAdapter: true });
  });

  afterAll(async () => {
    useWebGpuKernels('ganfleet');
    await tf.setBackend('cpu');
  });

  async function filterGrad(backend: string, xShape: Shape4D, filterShape: Shape4D, strides: number, pad: 'same' | 'valid'): Promise<Float32Array> {
    await tf.setBackend(backend);
    const rng = new Rng(11);
    const x = tf.tensor4d(rng.fillNormal(new Float32Array(xShape.reduce((a, b) => a * b))), xShape);
    const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, strides, 1, pad);
    const dy = tf.tensor4d(rng.fillNormal(new Float32Array(info.outShape.reduce((a, b) => a * b))), info.outShape);
    const attrs = { strides, pad, dataFormat: 'NHWC', filterShape };
    const dw = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
    try {
      return (await dw.data()) as Float32Array;
    } finally {
      tf.dispose([x, dy, dw]);
    }
  }

  function relErr(a: Float32Array, b: Float32Array): number {
    return relativeL2(new Map([['w', a]]), new Map([['w', b]]));
  }

  // Shapes of the conv model's convs (5x5 'same' at strides 1 and 2, the 1x1 output conv), a
  // 'valid' one with a ragged edge, and a batch whose K (batch × out pixels) splits into chunks
  // that end mid-image.
  it.each([
    [[3, 28, 28, 1], [5, 5, 1, 32], 1, 'same'],
    [[2, 14, 14, 32], [5, 5, 32, 64], 1, 'same'],
    [[2, 28, 28, 16], [1, 1, 16, 1], 1, 'same'],
    [[2, 14, 14, 32], [5, 5, 32, 16], 2, 'same'],
    [[2, 13, 11, 3], [3, 4, 3, 5], 2, 'valid'],
    [[40, 9, 7, 2], [3, 3, 2, 3], 1, 'same'],
  ] as [Shape4D, Shape4D, number, 'same' | 'valid'][])(
    'Conv2DBackpropFilter x %j filter %j stride %i %s matches cpu',
    async (xShape, filterShape, strides, pad) => {
      const expected = await filterGrad('cpu', xShape, filterShape, strides, pad);
      const actual = await filterGrad('webgpu', xShape, filterShape, strides, pad);
      expect(actual.length).toBe(expected.length);
      expect(relErr(expected, actual)).toBeLessThan(1e-5);
    },
  );

  it('replaces the stock kernels, which the stock set brings back, with the same result', async () => {
    const args: [Shape4D, Shape4D, number, 'same'] = [[2, 14, 14, 8], [5, 5, 8, 4], 1, 'same'];
    const ours = await filterGrad('webgpu', ...args);
    const kernel = tf.getKernel(tf.Conv2DBackpropFilter, 'webgpu');
    const sum = tf.getKernel(tf.Sum, 'webgpu');
    useWebGpuKernels('stock');
    expect(tf.getKernel(tf.Conv2DBackpropFilter, 'webgpu')).not.toBe(kernel);
    expect(tf.getKernel(tf.Sum, 'webgpu')).not.toBe(sum);
    const stock = await filterGrad('webgpu', ...args);
    useWebGpuKernels('ganfleet');
    expect(tf.getKernel(tf.Conv2DBackpropFilter, 'webgpu')).toBe(kernel);
    expect(tf.getKernel(tf.Sum, 'webgpu')).toBe(sum);
    expect(relErr(stock, ours)).toBeLessThan(1e-5);
  });

  /** Training-mode batch norm: [loss, dx, dγ, dβ, moments] for loss = Σ y·w, w a fixed random tensor. */
  async function batchNormRun(backend: string, shape: number[], activation: 'linear' | 'relu' = 'linear'): Promise<Float32Array[]> {
    await tf.setBackend(backend);
    const rng = new Rng(13);
    const c = shape.at(-1) as number;
    const random = (s: number[], scale = 1, offset = 0): tf.Tensor =>
      tf.tensor(
        rng.fillNormal(new Float32Array(tf.util.sizeFromShape(s))).map((v) => v * scale + offset),
        s,
      );
    const [x, gamma, beta, w] = [random(shape, 3, 2), random([c], 0.5, 1), random([c]), random(shape)] as tf.Tensor[] as [
      tf.Tensor,
      tf.Tensor,
      tf.Tensor,
      tf.Tensor,
    ];
    const stats: BatchNormStat[] = [];
    const out = tf.tidy(() => {
      const loss = (xv: tf.Tensor, gv: tf.Tensor, bv: tf.Tensor): tf.Scalar =>
        tf.sum(
          tf.mul(
            batchNorm(
              new Map([
                ['bn/gamma', gv],
                ['bn/beta', bv],
              ]),
              'bn',
              xv,
              true,
              stats,
              activation,
            ),
            w,
          ),
        ) as tf.Scalar;
      const r = tf.valueAndGrads(loss)([x, gamma, beta]);
      return [r.value, ...r.grads];
    });
    const all = [...out, ...stats.map((s) => s.moments)];
    try {
      return await Promise.all(all.map(async (t) => (await t.data()) as Float32Array));
    } finally {
      tf.dispose([...all, x, gamma, beta, w]);
    }
  }

  // The seed model's four layers' shapes at small batches, more channels than threads in a
  // workgroup, and more rows than threads; with the ReLU the seed model puts after each.
  it.each([
    [[16, 1024], 'relu'],
    [[8, 3136], 'relu'],
    [[3, 14, 14, 32], 'relu'],
    [[2, 28, 28, 16], 'relu'],
    [[300, 5], 'relu'],
    [[300, 5], 'linear'],
    [[3, 14, 14, 32], 'linear'],
    // Few channels, many rows: split into chunks (3 of 1568 rows; 3 of 1367, the last shorter).
    [[6, 28, 28, 4], 'relu'],
    [[4099, 3], 'linear'],
  ] as [number[], 'linear' | 'relu'][])('batch norm (training) of x %j, then %s: value, gradients and statistics match cpu', async (shape, activation) => {
    await tf.setBackend('webgpu');
    expect(hasKernel(BN_MOMENTS)).toBe(true);
    const expected = await batchNormRun('cpu', shape, activation);
    const actual = await batchNormRun('webgpu', shape, activation);
    expect(actual).toHaveLength(5);
    ['loss', 'dx', 'dgamma', 'dbeta', 'moments'].forEach((what, i) =>
      expect(relErr(expected[i] as Float32Array, actual[i] as Float32Array), what).toBeLessThan(1e-5),
    );
  });

  it('batch norm runs on stock ops under the stock kernel set, with the same result', async () => {
    const ours = await batchNormRun('webgpu', [4, 7, 7, 8], 'relu');
    useWebGpuKernels('stock');
    expect(hasKernel(BN_MOMENTS)).toBe(false);
    const stock = await batchNormRun('webgpu', [4, 7, 7, 8], 'relu');
    useWebGpuKernels('ganfleet');
    expect(hasKernel(BN_MOMENTS)).toBe(true);
    ours.forEach((v, i) => expect(relErr(stock[i] as Float32Array, v)).toBeLessThan(1e-5));
  });

  /** tf.sum on a backend, and the GPU programs it ran. */
  async function sumRun(
    backend: string,
    shape: number[],
    axes: number[],
    keepDims: boolean,
  ): Promise<{ values: Float32Array; shape: number[]; programs: string[] }> {
    await tf.setBackend(backend);
    const x = tf.tensor(new Rng(17).fillNormal(new Float32Array(tf.util.sizeFromShape(shape))), shape);
    const { result: y, programs } = await recordPrograms(async () => tf.sum(x, axes, keepDims));
    const values = (await y.data()) as Float32Array;
    tf.dispose([x, y]);
    return { values, shape: y.shape, programs };
  }

  it.each([
    [[3, 14, 14, 32], [0, 1, 2], false, 'one'],
    [[300, 5], [0], false, 'one'],
    [[16, 1024], [0], true, 'one'],
    [[2, 5, 7, 3], [2, 0, 1], true, 'one'],
    [[4099, 3], [0], false, 'split'],
    [[6, 28, 28, 4], [0, 1, 2], true, 'split'],
    [[4, 6, 8], [1], false, 'stock'],
    [[4, 6, 8], [0, 1, 2], false, 'stock'],
    // More channels than a dispatch dimension takes.
    [[2, 70000], [0], false, 'stock'],
  ] as [number[], number[], boolean, 'one' | 'split' | 'stock'][])(
    'Sum of x %j over axes %j (keepDims %s): %s program(s), matches cpu',
    async (shape, axes, keepDims, how) => {
      const expected = await sumRun('cpu', shape, axes, keepDims);
      const actual = await sumRun('webgpu', shape, axes, keepDims);
      expect(actual.shape).toEqual(expected.shape);
      expect(relErr(expected.values, actual.values)).toBeLessThan(1e-5);
      // Shader keys end in the workgroup size.
      const ours = { one: ['ganfleetChannelSum'], split: ['ganfleetChannelSum', 'ganfleetCombine'], stock: [] }[how];
      expect(actual.programs.filter((p) => p.startsWith('ganfleet')).map((p) => p.split('_')[0])).toEqual(ours);
      if (how !== 'stock') expect(actual.programs).toHaveLength(ours.length);
    },
  );

  /** The gradient of Σ f(x)·w, w a fixed random tensor, and the GPU programs the backward pass ran. */
  async function activationGrad(backend: string, f: (x: tf.Tensor) => tf.Tensor): Promise<{ values: Float32Array; programs: string[] }> {
    await tf.setBackend(backend);
    const rng = new Rng(19);
    const shape = [3, 5, 7];
    const [x, w] = [0, 1].map(() => tf.tensor(rng.fillNormal(new Float32Array(tf.util.sizeFromShape(shape))), shape)) as [tf.Tensor, tf.Tensor];
    const { result: grad, programs } = await recordPrograms(async () => tf.grad((v: tf.Tensor) => tf.sum(tf.mul(f(v), w)))(x));
    const values = (await grad.data()) as Float32Array;
    tf.dispose([x, w, grad]);
    return { values, programs };
  }

  it.each([
    ['relu', tf.relu, 'ganfleetReluGrad'],
    ['tanh', tf.tanh, 'ganfleetTanhGrad'],
  ] as [string, (x: tf.Tensor) => tf.Tensor, string][])('%s gradient runs as one program of ours and matches cpu', async (_, f, key) => {
    const expected = await activationGrad('cpu', f);
    const actual = await activationGrad('webgpu', f);
    expect(relErr(expected.values, actual.values)).toBeLessThan(1e-6);
    expect(actual.programs.filter((p) => p.startsWith('ganfleet'))).toEqual([key]);
  });

  /**
   * A dense or conv layer (fused on webgpu, plain ops on cpu): [Σ y·w, and its gradients with
   * respect to those of x, kernel and bias that `wrt` names], and the GPU programs it all ran.
   */
  async function layerRun(
    backend: string,
    layer: 'dense' | 'conv',
    activation: 'linear' | 'relu',
    wrt: ('x' | 'kernel' | 'bias')[],
  ): Promise<{ values: Float32Array[]; programs: string[] }> {
    await tf.setBackend(backend);
    const rng = new Rng(29);
    const random = (shape: number[]): tf.Tensor => tf.tensor(rng.fillNormal(new Float32Array(tf.util.sizeFromShape(shape))), shape);
    const [xShape, kShape, yShape] =
      layer === 'dense'
        ? [
            [6, 20],
            [20, 9],
            [6, 9],
          ]
        : [
            [2, 9, 9, 3],
            [5, 5, 3, 4],
            [2, 9, 9, 4],
          ];
    const inputs = { x: random(xShape as number[]), kernel: random(kShape as number[]), bias: random([(kShape as number[]).at(-1) as number]) };
    const w = random(yShape as number[]);
    const f = (...vs: tf.Tensor[]): tf.Scalar => {
      const v = { ...inputs, ...Object.fromEntries(wrt.map((name, i) => [name, vs[i] as tf.Tensor])) };
      const p = new Map([
        ['l/kernel', v.kernel],
        ['l/bias', v.bias],
      ]);
      const y = layer === 'dense' ? dense(p, 'l', v.x as tf.Tensor2D, activation) : conv(p, 'l', v.x as tf.Tensor4D, 1, activation);
      return tf.sum(tf.mul(y, w));
    };
    const { result, programs } = await recordPrograms(async () => tf.valueAndGrads(f)(wrt.map((name) => inputs[name])));
    const out = [result.value, ...result.grads];
    const values = await Promise.all(out.map(async (t) => (await t.data()) as Float32Array));
    tf.dispose([...out, ...Object.values(inputs), w]);
    return { values, programs };
  }

  it.each([
    ['dense', 'relu'],
    ['dense', 'linear'],
    ['conv', 'relu'],
    ['conv', 'linear'],
  ] as ['dense' | 'conv', 'linear' | 'relu'][])(
    'a fused %s layer with %s: value and gradients of x, kernel and bias match plain ops on cpu',
    async (layer, activation) => {
      await tf.setBackend('webgpu');
      expect(hasKernel(RELU_GRAD)).toBe(true);
      const expected = await layerRun('cpu', layer, activation, ['x', 'kernel', 'bias']);
      const actual = await layerRun('webgpu', layer, activation, ['x', 'kernel', 'bias']);
      expect(actual.values).toHaveLength(4);
      ['value', 'dx', 'dkernel', 'dbias'].forEach((what, i) =>
        expect(relErr(expected.values[i] as Float32Array, actual.values[i] as Float32Array), what).toBeLessThan(1e-5),
      );
    },
  );

  it("a fused conv layer's backward pass computes only the gradients asked for", async () => {
    const all = await layerRun('webgpu', 'conv', 'relu', ['x', 'kernel', 'bias']);
    const onlyX = await layerRun('webgpu', 'conv', 'relu', ['x']);
    expect(all.programs).toContain('ganfleetConv2DFilterGradPartials');
    expect(onlyX.programs).not.toContain('ganfleetConv2DFilterGradPartials');
    expect(onlyX.programs.filter((p) => p.startsWith('ganfleetChannelSum'))).toHaveLength(0);
    expect(relErr(all.values[1] as Float32Array, onlyX.values[1] as Float32Array)).toBe(0);
  });

  /** D's and G's losses and their gradients for the given logits, and the GPU programs they ran. */
  async function lossRun(backend: string, logits: number[]): Promise<{ values: Float32Array[]; programs: string[] }> {
    await tf.setBackend(backend);
    const x = tf.tensor2d(logits, [logits.length, 1]);
    const { result, programs } = await recordPrograms(async () => [
      tf.valueAndGrad((v: tf.Tensor) => discriminatorLoss(v, logits.length / 2))(x),
      tf.valueAndGrad((v: tf.Tensor) => generatorLoss(v))(x),
    ]);
    const out = result.flatMap((r) => [r.value, r.grad]);
    const values = await Promise.all(out.map(async (t) => (await t.data()) as Float32Array));
    tf.dispose([...out, x]);
    return { values, programs };
  }

  it.each([
    ['moderate', Array.from(new Rng(31).fillNormal(new Float32Array(24))).map((v) => 2 * v)],
    ['saturated', [-200, 200, 150, -90, 0, 1e-3]],
    // Enough for the loss's sum to be split into chunks.
    ['many', Array.from(new Rng(37).fillNormal(new Float32Array(5000)))],
  ])('the log-losses on %s logits: values and gradients match cpu, one program each way', async (_, logits) => {
    const expected = await lossRun('cpu', logits);
    const actual = await lossRun('webgpu', logits);
    ['D loss', 'D grad', 'G loss', 'G grad'].forEach((what, i) => {
      const a = actual.values[i] as Float32Array;
      expect(Array.from(a).every(Number.isFinite), what).toBe(true);
      expect(relErr(expected.values[i] as Float32Array, a), what).toBeLessThan(1e-5);
    });
    const ours = actual.programs.filter((p) => p.startsWith('ganfleetLogLoss'));
    expect(ours.map((p) => p.split('_')[0])).toEqual(['ganfleetLogLoss', 'ganfleetLogLossGrad', 'ganfleetLogLoss', 'ganfleetLogLossGrad']);
    expect(actual.programs.filter((p) => p.startsWith('ganfleetCombine'))).toHaveLength(logits.length > 2048 ? 2 : 0);
  });

  it('leaves no tensor behind', async () => {
    // Every kernel of ours, forwards and backwards.
    const all = async (): Promise<void> => {
      await filterGrad('webgpu', [2, 14, 14, 8], [5, 5, 8, 4], 1, 'same');
      await batchNormRun('webgpu', [4, 7, 7, 8], 'relu');
      await layerRun('webgpu', 'conv', 'relu', ['x', 'kernel', 'bias']);
      await layerRun('webgpu', 'dense', 'relu', ['x', 'kernel', 'bias']);
      await sumRun('webgpu', [3, 5, 7], [0, 1], true);
      await sumRun('webgpu', [4099, 3], [0], false);
      await activationGrad('webgpu', tf.tanh);
      await lossRun('webgpu', [1, -2, 3, -4]);
    };
    await all();
    const before = tf.memory().numTensors;
    const bytes = (tf.memory() as { numBytesInGPU?: number }).numBytesInGPU;
    for (let i = 0; i < 5; i++) await all();
    expect(tf.memory().numTensors).toBe(before);
    expect((tf.memory() as { numBytesInGPU?: number }).numBytesInGPU).toBe(bytes);
  });
});

describe('splitCount', () => {
  it('splits long sums into chunks of at least 128 products and stops near 2^19 threads', () => {
    expect(splitCount(800, 2048 * 784)).toBe(656); // seed D conv1 at batch 1024: 800 filter elements
    expect(splitCount(51200, 2048 * 196)).toBe(11);
    expect(splitCount(16, 100)).toBe(1);
    expect(splitCount(1, 1000)).toBe(8);
  });
});

describe('rowSplit', () => {
  it('splits a reduction of few channels and many rows into chunks of at least 2048 rows, up to about 1024 workgroups', () => {
    expect(rowSplit(64 * 784, 16)).toEqual({ splits: 25, chunk: 2008 }); // seed G's last batch norm at batch 64
    expect(rowSplit(1024 * 784, 16)).toEqual({ splits: 64, chunk: 12544 }); // and at batch 1024
    expect(rowSplit(4099, 3)).toEqual({ splits: 3, chunk: 1367 });
    expect(rowSplit(64, 1024)).toEqual({ splits: 1, chunk: 64 });
    expect(rowSplit(100000, 2048)).toEqual({ splits: 1, chunk: 100000 });
    expect(rowSplit(2048, 1)).toEqual({ splits: 1, chunk: 2048 });
  });

  it('covers every row with chunks of which none is empty', () => {
    const rng = new Rng(41);
    for (let i = 0; i < 2000; i++) {
      const rows = 1 + Math.floor(rng.uniform() * 2e6);
      const channels = 1 + Math.floor(rng.uniform() * 300);
      const { splits, chunk } = rowSplit(rows, channels);
      expect(splits * chunk).toBeGreaterThanOrEqual(rows);
      expect((splits - 1) * chunk).toBeLessThan(rows);
      expect(splits * channels).toBeLessThanOrEqual(Math.max(channels, 1024 + channels));
    }
  });
});

describe('groupSize', () => {
  it('gives a reduction the power of two of threads its rows need, from 8 to 256', () => {
    expect([1, 8, 9, 64, 65, 300, 1e6].map(groupSize)).toEqual([8, 8, 16, 64, 128, 256, 256]);
  });
});
