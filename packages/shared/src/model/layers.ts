import * as tf from '@tensorflow/tfjs';
import { conv2dTransposeFast, useFastConvTranspose } from '../backend/fastOps.js';
import { type Activation, fusedConv, fusedDense, useFusedLayers } from '../backend/webgpuFusedLayers.js';
import { BN_APPLY, BN_GRAD_INPUT, BN_GRAD_SUMS, BN_MOMENTS, hasBatchNormKernels } from '../backend/webgpuBatchNorm.js';
import type { BatchNormStat, Init, ParamSpec, TensorMap } from './preset.js';

/** Small building blocks shared by the presets. */

export const BN_EPSILON = 1e-5;

export function param(p: TensorMap, name: string): tf.Tensor {
  const t = p.get(name);
  if (!t) throw new Error(`missing parameter ${name}`);
  return t;
}

export const truncNormal = (stddev: number): Init => ({ kind: 'truncatedNormal', stddev });

export function denseSpecs(prefix: string, group: 'G' | 'D', inDim: number, outDim: number, init: Init, biasInit: Init): ParamSpec[] {
  return [
    { name: `${prefix}/kernel`, shape: [inDim, outDim], group, init, trainable: true },
    { name: `${prefix}/bias`, shape: [outDim], group, init: biasInit, trainable: true },
  ];
}

export function convSpecs(prefix: string, group: 'G' | 'D', kernelShape: number[], biasSize: number, init: Init, biasInit: Init): ParamSpec[] {
  return [
    { name: `${prefix}/kernel`, shape: kernelShape, group, init, trainable: true },
    { name: `${prefix}/bias`, shape: [biasSize], group, init: biasInit, trainable: true },
  ];
}

/** gamma, beta, moving mean, moving variance: the Keras BatchNormalization weight order. */
export function batchNormSpecs(prefix: string, size: number): ParamSpec[] {
  return [
    { name: `${prefix}/gamma`, shape: [size], group: 'G', init: { kind: 'ones' }, trainable: true },
    { name: `${prefix}/beta`, shape: [size], group: 'G', init: { kind: 'zeros' }, trainable: true },
    { name: `${prefix}/moving_mean`, shape: [size], group: 'G', init: { kind: 'zeros' }, trainable: false },
    { name: `${prefix}/moving_variance`, shape: [size], group: 'G', init: { kind: 'ones' }, trainable: false },
  ];
}

/** x·kernel + bias, then the activation; one program on webgpu with ganfleet's kernels. */
export function dense(p: TensorMap, prefix: string, x: tf.Tensor2D, activation: Activation = 'linear'): tf.Tensor2D {
  const kernel = param(p, `${prefix}/kernel`) as tf.Tensor2D;
  const bias = param(p, `${prefix}/bias`);
  if (useFusedLayers()) return fusedDense(x, kernel, bias, activation);
  return activate(tf.add(tf.matMul(x, kernel), bias), activation);
}

const activate = <T extends tf.Tensor>(y: T, activation: Activation): T => (activation === 'relu' ? tf.relu(y) : y);

/** Transposed convolution, 'same' padding; on wasm a faster equivalent formulation. */
export function deconv(p: TensorMap, prefix: string, x: tf.Tensor4D, outChannels: number, stride: number): tf.Tensor4D {
  const [b, h, w] = x.shape;
  const filter = param(p, `${prefix}/kernel`) as tf.Tensor4D;
  const outShape: [number, number, number, number] = [b, h * stride, w * stride, outChannels];
  const y = useFastConvTranspose() ? conv2dTransposeFast(x, filter, outShape, stride, 'same') : tf.conv2dTranspose(x, filter, outShape, stride, 'same');
  return tf.add(y, param(p, `${prefix}/bias`));
}

/** Convolution, 'same' padding, + bias, then the activation; one program on webgpu with ganfleet's kernels. */
export function conv(p: TensorMap, prefix: string, x: tf.Tensor4D, stride: number, activation: Activation = 'linear'): tf.Tensor4D {
  const filter = param(p, `${prefix}/kernel`) as tf.Tensor4D;
  const bias = param(p, `${prefix}/bias`);
  if (useFusedLayers()) return fusedConv(x, filter, bias, stride, activation);
  return activate(tf.add(tf.conv2d(x, filter, stride, 'same'), bias), activation);
}

/**
 * Batch norm over all axes but the last, then the activation. Training mode normalises with the
 * batch's own (biased) statistics and returns them so the coordinator can form inference
 * statistics; with ganfleet's webgpu kernels a ReLU happens inside them, gradient included.
 */
export function batchNorm<T extends tf.Tensor>(
  p: TensorMap,
  prefix: string,
  x: T,
  training: boolean,
  stats: BatchNormStat[],
  activation: Activation = 'linear',
): T {
  const gamma = param(p, `${prefix}/gamma`);
  const beta = param(p, `${prefix}/beta`);
  const relu = activation === 'relu';
  if (!training)
    return activate(tf.batchNorm(x, param(p, `${prefix}/moving_mean`), param(p, `${prefix}/moving_variance`), beta, gamma, BN_EPSILON) as T, activation);
  const onStats = (moments: tf.Tensor1D): number => stats.push({ layer: prefix, moments });
  if (hasBatchNormKernels(x.shape[x.rank - 1] as number)) return closedForm(relu ? kernelRelu : kernelLinear, x, gamma, beta, onStats);
  return activate(closedForm(stockOps, x, gamma, beta, onStats), activation);
}

/** Training-mode batch norm's two passes. */
interface BatchNormImpl {
  /** y, the statistics as one [means, variances] tensor, and what backward needs. */
  forward(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): { y: tf.Tensor; moments: tf.Tensor1D; saved: tf.Tensor[] };
  /** [dx, dγ, dβ] */
  backward(dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[];
}

/**
 * Training-mode batch norm with its gradient written out (the textbook closed form) instead of
 * derived by autodiff through the moments, which matters where each kernel is a GPU dispatch with
 * a fixed cost: 2 kernels forwards and 4 backwards with ganfleet's webgpu kernels (ReLU
 * included), 5 and 13 in stock ops (the normalisation in FusedBatchNorm), about 40 by autodiff.
 * With x̂ = (x - mean)·invStd and n values per channel: dβ = Σ dy, dγ = Σ dy·x̂,
 * dx = γ·invStd·(dy - dβ/n - x̂·dγ/n). x̂ is recomputed backwards, so a forward pass without
 * gradients (G's inside D's phase) pays nothing for it. The statistics go to onStats, kept.
 */
function closedForm<T extends tf.Tensor>(impl: BatchNormImpl, x: T, gamma: tf.Tensor, beta: tf.Tensor, onStats: (moments: tf.Tensor1D) => void): T {
  const f = tf.customGrad((xIn, gammaIn, betaIn, save) => {
    const { y, moments, saved } = impl.forward(xIn as tf.Tensor, gammaIn as tf.Tensor, betaIn as tf.Tensor);
    onStats(tf.keep(moments));
    (save as tf.GradSaveFunc)(saved);
    return { value: y, gradFunc: (dy: tf.Tensor | tf.Tensor[], s: tf.Tensor[]) => impl.backward(dy as tf.Tensor, s) };
  });
  return f(x, gamma, beta) as T;
}

/** The axes a per-channel statistic reduces: all but the last. */
const channelAxes = (x: tf.Tensor): number[] => x.shape.slice(0, -1).map((_, i) => i);

const stockOps: BatchNormImpl = {
  forward(x, gamma, beta) {
    const { mean, variance } = tf.moments(x, channelAxes(x));
    const y = tf.batchNorm(x, mean, variance, beta, gamma, BN_EPSILON);
    return { y, moments: tf.concat([mean, variance]) as tf.Tensor1D, saved: [x, gamma, mean, variance] };
  },
  backward(dy, saved) {
    const [x, gamma, mean, variance] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
    const axes = channelAxes(x);
    const n = x.size / (x.shape[x.rank - 1] as number);
    const xHat = tf.batchNorm(x, mean, variance, undefined, undefined, BN_EPSILON);
    const invStd = tf.rsqrt(tf.add(variance, BN_EPSILON));
    const dBeta = tf.sum(dy, axes);
    const dGamma = tf.sum(tf.mul(dy, xHat), axes);
    const centred = tf.sub(tf.sub(dy, tf.div(dBeta, n)), tf.mul(xHat, tf.div(dGamma, n)));
    return [tf.mul(centred, tf.mul(gamma, invStd)), dGamma, dBeta];
  },
};

function kernelOps(relu: boolean): BatchNormImpl {
  const attrs = { epsilon: BN_EPSILON, relu };
  const run = (name: string, inputs: tf.NamedTensorMap): tf.Tensor => tf.engine().runKernel(name, inputs, attrs) as tf.Tensor;
  return {
    forward(x, gamma, beta) {
      const moments = run(BN_MOMENTS, { x }) as tf.Tensor1D;
      return { y: run(BN_APPLY, { x, moments, gamma, beta }), moments, saved: [x, gamma, beta, moments] };
    },
    backward(dy, saved) {
      const [x, gamma, beta, moments] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      const sums = run(BN_GRAD_SUMS, { x, dy, moments, gamma, beta });
      const [dBeta, dGamma] = tf.split(sums, 2) as [tf.Tensor, tf.Tensor];
      return [run(BN_GRAD_INPUT, { x, dy, moments, gamma, beta, sums }), dGamma, dBeta];
    },
  };
}

const kernelLinear = kernelOps(false);
const kernelRelu = kernelOps(true);

/** tf.LayersModel.getWeights() lists all trainable weights first, then the non-trainable ones (moving statistics). */
export function layersWeightOrder(params: readonly ParamSpec[]): string[] {
  const g = params.filter((s) => s.group === 'G');
  return [...g.filter((s) => s.trainable), ...g.filter((s) => !s.trainable)].map((s) => s.name);
}
