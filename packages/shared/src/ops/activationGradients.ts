import * as tf from '@tensorflow/tfjs';
import { RELU_GRAD, TANH_GRAD, hasKernel } from './kernelNames.js';

/*
 * ReLU's and tanh's gradients through RELU_GRAD and TANH_GRAD where the backend has them (one
 * kernel each instead of two or three), else the same formulas as tfjs's own gradients.
 */

const run = (kernelName: string, dy: tf.Tensor, other: tf.Tensor): tf.Tensor => tf.engine().runKernel(kernelName, { dy, other }) as tf.Tensor;

/** dy where `x` (ReLU's input, or its output) is positive. */
export function reluGrad(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  return hasKernel(RELU_GRAD) ? run(RELU_GRAD, dy, x) : tf.mul(dy, tf.step(x));
}

/** dy·(1 - y²) for tanh's output y. */
export function tanhGrad(dy: tf.Tensor, y: tf.Tensor): tf.Tensor {
  return hasKernel(TANH_GRAD) ? run(TANH_GRAD, dy, y) : tf.mul(tf.sub(1, tf.square(y)), dy);
}

/** For registerOpGradients (tfjs's gradient registry is global: these serve every backend). */
export const activationGradients: tf.GradConfig[] = [
  { kernelName: tf.Relu, inputsToSave: ['x'], gradFunc: (dy, [x]) => ({ x: () => reluGrad(dy as tf.Tensor, x as tf.Tensor) }) },
  { kernelName: tf.Tanh, outputsToSave: [true], gradFunc: (dy, [y]) => ({ x: () => tanhGrad(dy as tf.Tensor, y as tf.Tensor) }) },
];
