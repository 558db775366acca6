import * as tf from '@tensorflow/tfjs';
import { RELU_GRAD, TANH_GRAD } from '../../ops/index.js';
import { ElementwiseProgram, type KernelArgs, type WebGpuBackendLike } from './program.js';

/*
 * ReLU's and tanh's gradients in one program each on 'webgpu' (stock: step then multiply; square,
 * subtract, multiply), registered under the names ganfleet's ops look for.
 */

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
