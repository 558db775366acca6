import * as tf from '@tensorflow/tfjs';
import { ElementwiseProgram, type KernelArgs, type WebGpuBackendLike, hasKernel } from './webgpuProgram.js';

/*
 * ReLU's and tanh's gradients in one program each on 'webgpu' (stock: step then multiply; square,
 * subtract, multiply). The gradients are registered for every backend, since tfjs's gradient
 * registry is global, and use our kernels only where they exist, stock ops elsewhere (the same
 * formulas as tfjs's own gradients).
 */

export const RELU_GRAD = 'GanfleetReluGrad';
export const TANH_GRAD = 'GanfleetTanhGrad';

function pairwise(kernelName: string, shaderKey: string, expression: string): tf.KernelConfig {
  const kernelFunc = (args: KernelArgs): tf.TensorInfo => {
    const { dy, other } = args.inputs as { dy: tf.TensorInfo; other: tf.TensorInfo };
    // out[i] = expression of a_ = dy[i] and b_ = other[i]
    const body = `let a_ = a[index]; let b_ = b[index]; setOutputAtIndex(index, ${expression});`;
    const program = new ElementwiseProgram(['a', 'b'], dy.shape, shaderKey, body);
    return (args.backend as unknown as WebGpuBackendLike).runWebGPUProgram(program, [dy, other], 'float32', []);
  };
  return { kernelName, backendName: 'webgpu', kernelFunc };
}

/** For useWebGpuKernels to register: dy masked where x > 0; dy·(1 - y²). */
export const activationGradKernelConfigs: tf.KernelConfig[] = [
  pairwise(RELU_GRAD, 'ganfleetReluGrad', 'select(0.0, a_, b_ > 0.0)'),
  pairwise(TANH_GRAD, 'ganfleetTanhGrad', 'a_ * (1.0 - b_ * b_)'),
];

const run = (kernelName: string, dy: tf.Tensor, other: tf.Tensor): tf.Tensor => tf.engine().runKernel(kernelName, { dy, other }) as tf.Tensor;

/** Registered once by useWebGpuKernels (tfjs's gradient registry is global). */
export const activationGradients: tf.GradConfig[] = [
  {
    kernelName: tf.Relu,
    inputsToSave: ['x'],
    gradFunc: (dy, [x]) => ({
      x: () => (hasKernel(RELU_GRAD) ? run(RELU_GRAD, dy as tf.Tensor, x as tf.Tensor) : tf.mul(dy as tf.Tensor, tf.step(x as tf.Tensor))),
    }),
  },
  {
    kernelName: tf.Tanh,
    outputsToSave: [true],
    gradFunc: (dy, [y]) => ({
      x: () => (hasKernel(TANH_GRAD) ? run(TANH_GRAD, dy as tf.Tensor, y as tf.Tensor) : tf.mul(tf.sub(1, tf.square(y as tf.Tensor)), dy as tf.Tensor)),
    }),
  },
];
