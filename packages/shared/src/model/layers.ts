import * as tf from '@tensorflow/tfjs';
import { conv2dTransposeFast, useFastConvTranspose } from '../backend/fastOps.js';
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

export function dense(p: TensorMap, prefix: string, x: tf.Tensor2D): tf.Tensor2D {
  return tf.add(tf.matMul(x, param(p, `${prefix}/kernel`) as tf.Tensor2D), param(p, `${prefix}/bias`));
}

/** Transposed convolution, 'same' padding; on wasm a faster equivalent formulation. */
export function deconv(p: TensorMap, prefix: string, x: tf.Tensor4D, outChannels: number, stride: number): tf.Tensor4D {
  const [b, h, w] = x.shape;
  const filter = param(p, `${prefix}/kernel`) as tf.Tensor4D;
  const outShape: [number, number, number, number] = [b, h * stride, w * stride, outChannels];
  const y = useFastConvTranspose() ? conv2dTransposeFast(x, filter, outShape, stride, 'same') : tf.conv2dTranspose(x, filter, outShape, stride, 'same');
  return tf.add(y, param(p, `${prefix}/bias`));
}

export function conv(p: TensorMap, prefix: string, x: tf.Tensor4D, stride: number): tf.Tensor4D {
  return tf.add(tf.conv2d(x, param(p, `${prefix}/kernel`) as tf.Tensor4D, stride, 'same'), param(p, `${prefix}/bias`));
}

/**
 * Batch norm over all axes but the last. Training mode normalises with the batch's own
 * (biased) statistics and returns them so the coordinator can form inference statistics.
 */
export function batchNorm<T extends tf.Tensor>(p: TensorMap, prefix: string, x: T, training: boolean, stats: BatchNormStat[]): T {
  const gamma = param(p, `${prefix}/gamma`);
  const beta = param(p, `${prefix}/beta`);
  if (training) return batchNormTraining(x, gamma, beta, (mean, variance) => stats.push({ layer: prefix, mean, variance }));
  const scale = tf.mul(tf.rsqrt(tf.add(param(p, `${prefix}/moving_variance`), BN_EPSILON)), gamma);
  return tf.add(tf.mul(tf.sub(x, param(p, `${prefix}/moving_mean`)), scale), beta) as T;
}

/**
 * Training-mode batch norm with its gradient written out (the textbook closed form) instead of
 * derived by autodiff through the moments: about ten kernels backwards instead of thirty, which
 * matters where each kernel is a GPU dispatch with a fixed cost. With x̂ = (x - mean)·invStd and
 * n values per channel: dβ = Σ dy, dγ = Σ dy·x̂, dx = γ·invStd·(dy - dβ/n - x̂·dγ/n).
 * The batch statistics go to onStats, kept (the caller disposes them).
 */
function batchNormTraining<T extends tf.Tensor>(x: T, gamma: tf.Tensor, beta: tf.Tensor, onStats: (mean: tf.Tensor1D, variance: tf.Tensor1D) => void): T {
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const n = x.size / (x.shape[x.rank - 1] as number);
  const f = tf.customGrad((xIn, gammaIn, betaIn, save) => {
    const { mean, variance } = tf.moments(xIn as tf.Tensor, axes);
    onStats(tf.keep(mean) as tf.Tensor1D, tf.keep(variance) as tf.Tensor1D);
    const invStd = tf.rsqrt(tf.add(variance, BN_EPSILON));
    const xHat = tf.mul(tf.sub(xIn as tf.Tensor, mean), invStd);
    (save as tf.GradSaveFunc)([xHat, invStd, gammaIn as tf.Tensor]);
    return {
      value: tf.add(tf.mul(xHat, gammaIn as tf.Tensor), betaIn as tf.Tensor),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [sHat, sInvStd, sGamma] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const g = dy as tf.Tensor;
        const dBeta = tf.sum(g, axes);
        const dGamma = tf.sum(tf.mul(g, sHat), axes);
        const centred = tf.sub(tf.sub(g, tf.div(dBeta, n)), tf.mul(sHat, tf.div(dGamma, n)));
        return [tf.mul(centred, tf.mul(sGamma, sInvStd)), dGamma, dBeta];
      },
    };
  });
  return f(x, gamma, beta) as T;
}

/** tf.LayersModel.getWeights() lists all trainable weights first, then the non-trainable ones (moving statistics). */
export function layersWeightOrder(params: readonly ParamSpec[]): string[] {
  const g = params.filter((s) => s.group === 'G');
  return [...g.filter((s) => s.trainable), ...g.filter((s) => !s.trainable)].map((s) => s.name);
}
