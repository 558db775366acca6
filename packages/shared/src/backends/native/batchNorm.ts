import * as tf from '@tensorflow/tfjs';
import { BN_APPLY, BN_GRAD_INPUT, BN_GRAD_SUMS, BN_MOMENTS } from '../../ops/index.js';
import type { NativeKernelFactory, WasmHeap } from './kernels.js';

/*
 * ganfleet's training-mode batch-norm kernels (ops/batchNorm.ts; the same contract as the webgpu
 * ones) for the wasm backend under `native`, as JavaScript loops over the heap: 2 passes over x
 * forwards and 2 (plus one over dy) backwards where wasm's stock ops take ~20 kernels. Tensors are
 * read as [rows, C], C the last axis; statistics travel as one [2C] tensor, the means then the
 * biased variances. Sums accumulate in float64, per channel, in row order. With attrs.relu the
 * output is max(0, y), and the backward kernels recompute y (the same float64 expression, so the
 * same sign) to mask dy. Masks multiply by the comparison's 0 or 1 instead of branching.
 */

interface BnAttrs {
  epsilon: number;
  relu: boolean;
}

function inputsOf(args: Parameters<tf.KernelFunc>[0], kernelName: string, names: string[]): Float32Array[] {
  const heap = args.backend as unknown as WasmHeap;
  return names.map((name) => {
    const t = (args.inputs as Record<string, tf.TensorInfo | undefined>)[name];
    if (!t || t.dtype !== 'float32') throw new Error(`ganfleet's native ${kernelName}: input ${name} missing or not float32`);
    return heap.typedArrayFromHeap(t) as Float32Array;
  });
}

/** Per-channel y = x·scale + shift (= γ·(x - mean)·invStd + β), in float64. */
function affine(moments: Float32Array, gamma: Float32Array, beta: Float32Array, channels: number, epsilon: number) {
  const invStd = new Float64Array(channels);
  const scale = new Float64Array(channels);
  const shift = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    invStd[c] = 1 / Math.sqrt((moments[channels + c] as number) + epsilon);
    scale[c] = (gamma[c] as number) * (invStd[c] as number);
    shift[c] = (beta[c] as number) - (moments[c] as number) * (scale[c] as number);
  }
  return { invStd, scale, shift };
}

/** The output tensor, made before any view is taken (making it may grow the heap). */
function output(args: Parameters<tf.KernelFunc>[0], shape: number[]): { out: tf.TensorInfo; heap: WasmHeap } {
  const heap = args.backend as unknown as WasmHeap;
  return { out: heap.makeOutput(shape, 'float32'), heap };
}

const channelsOf = (args: Parameters<tf.KernelFunc>[0]): number => {
  const x = (args.inputs as Record<string, tf.TensorInfo>).x as tf.TensorInfo;
  return x.shape[x.shape.length - 1] ?? 1;
};

const moments: NativeKernelFactory = () => (args) => {
  const channels = channelsOf(args);
  const { out, heap } = output(args, [2 * channels]);
  const [x] = inputsOf(args, BN_MOMENTS, ['x']) as [Float32Array];
  const rows = x.length / channels;
  const sum = new Float64Array(channels);
  for (let i = 0; i < x.length; i += channels) for (let c = 0; c < channels; c++) sum[c] = (sum[c] as number) + (x[i + c] as number);
  const mean = sum.map((s) => s / rows);
  const sq = new Float64Array(channels);
  for (let i = 0; i < x.length; i += channels) {
    for (let c = 0; c < channels; c++) {
      const d = (x[i + c] as number) - (mean[c] as number);
      sq[c] = (sq[c] as number) + d * d;
    }
  }
  const result = heap.typedArrayFromHeap(out);
  for (let c = 0; c < channels; c++) {
    result[c] = mean[c] as number;
    result[channels + c] = (sq[c] as number) / rows;
  }
  return out;
};

const apply: NativeKernelFactory = () => (args) => {
  const { epsilon, relu } = args.attrs as unknown as BnAttrs;
  const channels = channelsOf(args);
  const { out, heap } = output(args, [...(args.inputs as Record<string, tf.TensorInfo>).x!.shape]);
  const [x, m, gamma, beta] = inputsOf(args, BN_APPLY, ['x', 'moments', 'gamma', 'beta']) as [Float32Array, Float32Array, Float32Array, Float32Array];
  const { scale, shift } = affine(m, gamma, beta, channels, epsilon);
  const y = heap.typedArrayFromHeap(out);
  // Branch-free loops (a ReLU's random signs would mispredict): v·(v > 0) is the ReLU.
  for (let i = 0; i < x.length; i += channels) {
    if (relu) {
      for (let c = 0; c < channels; c++) {
        const v = (x[i + c] as number) * (scale[c] as number) + (shift[c] as number);
        y[i + c] = v * +(v > 0);
      }
    } else {
      for (let c = 0; c < channels; c++) y[i + c] = (x[i + c] as number) * (scale[c] as number) + (shift[c] as number);
    }
  }
  return out;
};

const gradSums: NativeKernelFactory = () => (args) => {
  const { epsilon, relu } = args.attrs as unknown as BnAttrs;
  const channels = channelsOf(args);
  const { out, heap } = output(args, [2 * channels]);
  const [x, dy, m, gamma, beta] = inputsOf(args, BN_GRAD_SUMS, ['x', 'dy', 'moments', 'gamma', 'beta']) as Float32Array[] as [
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
  ];
  const { invStd, scale, shift } = affine(m, gamma, beta, channels, epsilon);
  // Without a ReLU every row passes: a threshold no value reaches.
  const floor = relu ? 0 : -Infinity;
  const dBeta = new Float64Array(channels);
  const dGammaCentred = new Float64Array(channels);
  for (let i = 0; i < x.length; i += channels) {
    for (let c = 0; c < channels; c++) {
      const xv = x[i + c] as number;
      const g = (dy[i + c] as number) * +(xv * (scale[c] as number) + (shift[c] as number) > floor);
      dBeta[c] = (dBeta[c] as number) + g;
      dGammaCentred[c] = (dGammaCentred[c] as number) + g * (xv - (m[c] as number));
    }
  }
  const result = heap.typedArrayFromHeap(out);
  for (let c = 0; c < channels; c++) {
    result[c] = dBeta[c] as number;
    result[channels + c] = (dGammaCentred[c] as number) * (invStd[c] as number);
  }
  return out;
};

const gradInput: NativeKernelFactory = () => (args) => {
  const { epsilon, relu } = args.attrs as unknown as BnAttrs;
  const channels = channelsOf(args);
  const { out, heap } = output(args, [...(args.inputs as Record<string, tf.TensorInfo>).x!.shape]);
  const [x, dy, m, gamma, beta, sums] = inputsOf(args, BN_GRAD_INPUT, ['x', 'dy', 'moments', 'gamma', 'beta', 'sums']) as [
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
  ];
  const rows = x.length / channels;
  const { invStd, scale, shift } = affine(m, gamma, beta, channels, epsilon);
  // dx = γ·invStd·(g - dβ/n - x̂·dγ/n) = g·scale - (dβ/n)·scale - (x - mean)·invStd·(dγ/n)·scale.
  const k0 = new Float64Array(channels);
  const k1 = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    k0[c] = ((sums[c] as number) / rows) * (scale[c] as number);
    k1[c] = ((sums[channels + c] as number) / rows) * (scale[c] as number) * (invStd[c] as number);
  }
  const floor = relu ? 0 : -Infinity;
  const dx = heap.typedArrayFromHeap(out);
  for (let i = 0; i < x.length; i += channels) {
    for (let c = 0; c < channels; c++) {
      const xv = x[i + c] as number;
      const sc = scale[c] as number;
      const g = (dy[i + c] as number) * +(xv * sc + (shift[c] as number) > floor);
      dx[i + c] = g * sc - (k0[c] as number) - (xv - (m[c] as number)) * (k1[c] as number);
    }
  }
  return out;
};

export const nativeBatchNormKernels: Record<string, NativeKernelFactory> = {
  [BN_MOMENTS]: moments,
  [BN_APPLY]: apply,
  [BN_GRAD_SUMS]: gradSums,
  [BN_GRAD_INPUT]: gradInput,
};
