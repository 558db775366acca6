import * as tf from '@tensorflow/tfjs';
import { activationGradKernelConfigs } from './activationGradKernels.js';
import { batchNormKernelConfigs } from './batchNormKernels.js';
import { logLossKernelConfigs } from './logLossKernels.js';
import { channelSum } from './channelReduce.js';
import { type KernelArgs, type Uniform, type WebGpuBackendLike, webgpuKernel } from './program.js';

/*
 * Kernels of our own for the tfjs 'webgpu' backend, where its stock ones leave most of a GPU idle
 * or take many dispatches.
 */

/** Threads one filter-gradient dispatch aims for: a few per core of a large GPU (an H100 keeps ~270k resident). */
const TARGET_THREADS = 1 << 19;
/** Fewest products one thread sums: below this the partial sums cost more than they save. */
const MIN_CHUNK = 128;

/**
 * Conv2DBackpropFilter as a split-K reduction. dW[m, n] (m = (row, col, in channel) of the
 * filter, n = out channel) sums x-patch × dy over K = batch × out height × out width products.
 * Stock tfjs gives each of the M×N filter elements one thread looping over all K: for the seed
 * model's first conv that is 800 threads each summing 1.6 M products at batch 1024, on a GPU that
 * runs hundreds of thousands at once. Here S threads share each element's sum, each over a
 * contiguous chunk of K, writing partials [M×N, S] that the backend's Sum reduces.
 */
class FilterGradPartialsProgram {
  readonly variableNames = ['x', 'dy'];
  readonly outputShape: number[];
  readonly workgroupSize: [number, number, number] = [128, 1, 1];
  readonly dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  readonly size = true;
  readonly uniforms =
    'M : i32, N : i32, S : i32, chunk : i32, K : i32, inC : i32, fw : i32, inH : i32, inW : i32, outH : i32, outW : i32, strideH : i32, strideW : i32, padTop : i32, padLeft : i32,';
  shaderKey = 'ganfleetConv2DFilterGradPartials';

  constructor(mn: number, s: number) {
    this.outputShape = [mn, s];
    this.dispatchLayout = { x: [0, 1] };
    this.dispatch = [Math.ceil((mn * s) / this.workgroupSize[0]), 1, 1];
  }

  getUserCode(): string {
    // Thread order: out channel fastest, so neighbouring threads read neighbouring dy values
    // and the same x value.
    return `
      fn main(index : i32) {
        if (index >= uniforms.size) { return; }
        let n = index % uniforms.N;
        let t = index / uniforms.N;
        let m = t % uniforms.M;
        let s = t / uniforms.M;
        let d1 = m % uniforms.inC;
        let wRC = m / uniforms.inC;
        let wC = wRC % uniforms.fw;
        let wR = wRC / uniforms.fw;
        let kStart = s * uniforms.chunk;
        let kEnd = min(kStart + uniforms.chunk, uniforms.K);
        let outHW = uniforms.outH * uniforms.outW;
        var b = kStart / outHW;
        let rem = kStart % outHW;
        var yR = rem / uniforms.outW;
        var yC = rem % uniforms.outW;
        var acc = 0.0;
        for (var k = kStart; k < kEnd; k = k + 1) {
          let xR = wR + yR * uniforms.strideH - uniforms.padTop;
          let xC = wC + yC * uniforms.strideW - uniforms.padLeft;
          if (xR >= 0 && xR < uniforms.inH && xC >= 0 && xC < uniforms.inW) {
            acc = acc + x[((b * uniforms.inH + xR) * uniforms.inW + xC) * uniforms.inC + d1] * dy[k * uniforms.N + n];
          }
          yC = yC + 1;
          if (yC == uniforms.outW) {
            yC = 0;
            yR = yR + 1;
            if (yR == uniforms.outH) {
              yR = 0;
              b = b + 1;
            }
          }
        }
        setOutputAtIndex((m * uniforms.N + n) * uniforms.S + s, acc);
      }
    `;
  }
}

/** How many partial sums per filter element: enough threads to fill the GPU, each with at least MIN_CHUNK products. */
export function splitCount(filterElements: number, k: number): number {
  return Math.max(1, Math.min(Math.ceil(TARGET_THREADS / filterElements), Math.ceil(k / MIN_CHUNK)));
}

function conv2DBackpropFilterSplitK(stock: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, filterShape } = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
    if (dataFormat !== 'NHWC') return stock(args);
    const backend = args.backend as unknown as WebGpuBackendLike;
    const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode);
    const m = info.filterHeight * info.filterWidth * info.inChannels;
    const n = info.outChannels;
    const k = info.batchSize * info.outHeight * info.outWidth;
    const s = splitCount(m * n, k);
    const chunk = Math.ceil(k / s);
    const int = (v: number): Uniform => ({ type: 'int32', data: [v] });
    const uniforms = [
      m,
      n,
      s,
      chunk,
      k,
      info.inChannels,
      info.filterWidth,
      info.inHeight,
      info.inWidth,
      info.outHeight,
      info.outWidth,
      info.strideHeight,
      info.strideWidth,
      info.padInfo.top,
      info.padInfo.left,
    ].map(int);
    const partials = backend.runWebGPUProgram(new FilterGradPartialsProgram(m * n, s), [x, dy], 'float32', uniforms);
    const sum = webgpuKernel('Sum')({ inputs: { x: partials }, backend: args.backend, attrs: { axis: [1], keepDims: false } }) as tf.TensorInfo;
    backend.disposeData(partials.dataId);
    const out = webgpuKernel('Reshape')({ inputs: { x: sum }, backend: args.backend, attrs: { shape: filterShape } }) as tf.TensorInfo;
    backend.disposeData(sum.dataId);
    return out;
  };
}

export type WebGpuKernelSet = 'ganfleet' | 'stock';

/** The stock kernels ours replace, each as ours wrapping the stock one (for what ours does not cover). */
const OVERRIDES: [string, (stock: tf.KernelFunc) => tf.KernelFunc][] = [
  [tf.Conv2DBackpropFilter, conv2DBackpropFilterSplitK],
  [tf.Sum, channelSum],
];

/** Per overridden kernel, the stock config and ours, so that 'stock' can bring it back (benchmarks compare the two). */
const swapped = new Map<string, { stock: tf.KernelConfig; ours: tf.KernelConfig }>();

/**
 * Registers our kernels for 'webgpu' ('ganfleet', what activation does): Conv2DBackpropFilter and
 * Sum over all axes but the last in place of the stock ones, and the batch-norm,
 * activation-gradient and log-loss kernels that ganfleet's ops use when present. 'stock' puts
 * tfjs's kernels back and removes ours. Needs tfjs-backend-webgpu's kernels registered.
 */
export function useWebGpuKernels(set: WebGpuKernelSet): void {
  for (const [name, wrap] of OVERRIDES) {
    const current = tf.getKernel(name, 'webgpu');
    if (!current) throw new Error(`the webgpu backend has no ${name} kernel to replace`);
    const known = swapped.get(name);
    // A kernel registered by someone else since (a fresh backend package) is the new stock one.
    const pair =
      known && (current === known.ours || current === known.stock) ? known : { stock: current, ours: { ...current, kernelFunc: wrap(current.kernelFunc) } };
    swapped.set(name, pair);
    tf.unregisterKernel(name, 'webgpu');
    tf.registerKernel(set === 'stock' ? pair.stock : pair.ours);
  }
  for (const config of [...batchNormKernelConfigs, ...activationGradKernelConfigs, ...logLossKernelConfigs]) {
    if (tf.getKernel(config.kernelName, 'webgpu')) tf.unregisterKernel(config.kernelName, 'webgpu');
    if (set === 'ganfleet') tf.registerKernel(config);
  }
}
