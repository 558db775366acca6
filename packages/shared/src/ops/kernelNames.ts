import * as tf from '@tensorflow/tfjs';

/*
 * Kernels of ganfleet's own that its ops run when the active backend registers them; without
 * them each op composes stock tfjs ops to the same result. A backend opts in by registering a
 * kernel under one of these names (see backends/), and nothing else needs to know which backend runs.
 */

/** dy where x > 0, else 0. Inputs: dy, other (= x). A backend that has it also gets fused dense and conv layers. */
export const RELU_GRAD = 'GanfleetReluGrad';
/** dy·(1 - y²). Inputs: dy, other (= y). */
export const TANH_GRAD = 'GanfleetTanhGrad';

/**
 * Training-mode batch norm (optionally with its ReLU): the [2C] moments of x, y from them, and
 * the two backward passes. Attributes: epsilon, relu.
 */
export const BN_MOMENTS = 'GanfleetBatchNormMoments';
export const BN_APPLY = 'GanfleetBatchNormApply';
export const BN_GRAD_SUMS = 'GanfleetBatchNormGradSums';
export const BN_GRAD_INPUT = 'GanfleetBatchNormGradInput';
/** The most channels the batch-norm kernels take (one GPU dispatch dimension); wider layers use stock ops. */
export const BN_KERNEL_MAX_CHANNELS = 65535;

/** Σ (softplus(x) - y·x)·scale and its gradient (σ(x) - y)·dy·scale. Inputs: x, labels (, dy); attribute: scale. */
export const LOG_LOSS = 'GanfleetLogLoss';
export const LOG_LOSS_GRAD = 'GanfleetLogLossGrad';

/** Whether the active backend registers this kernel. */
export function hasKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}
