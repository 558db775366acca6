import * as tf from '@tensorflow/tfjs';
import { BN_APPLY, BN_GRAD_INPUT, BN_GRAD_SUMS, BN_KERNEL_MAX_CHANNELS, BN_MOMENTS, hasKernel } from './kernelNames.js';

/** Keras's and the reference's batch-norm epsilon. */
export const BN_EPSILON = 1e-5;

/**
 * Training-mode batch norm over all axes but the last, optionally followed by a ReLU: normalises
 * with the batch's own (biased) statistics and hands them, as one [means, variances] tensor that
 * the caller owns, to `onStats`. Runs on the BN_* kernels where the backend has them.
 */
export function batchNormTraining<T extends tf.Tensor>(x: T, gamma: tf.Tensor, beta: tf.Tensor, relu: boolean, onStats: (moments: tf.Tensor1D) => void): T {
  if (x.shape[x.rank - 1]! <= BN_KERNEL_MAX_CHANNELS && hasKernel(BN_MOMENTS)) return closedForm(relu ? kernelRelu : kernelLinear, x, gamma, beta, onStats);
  const y = closedForm(stockOps, x, gamma, beta, onStats);
  return relu ? tf.relu(y) : y;
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
