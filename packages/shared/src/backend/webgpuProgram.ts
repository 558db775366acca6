import * as tf from '@tensorflow/tfjs';

/*
 * The part of tfjs-backend-webgpu's program interface our kernels use (the object
 * runWebGPUProgram compiles: it prepends the bindings, the uniforms and helpers such as
 * setOutputAtIndex to getUserCode()), typed structurally so that type-checking does not need the
 * optional package.
 */

export interface Uniform {
  type: 'int32' | 'float32';
  data: number[];
}

export interface WebGpuBackendLike {
  runWebGPUProgram(program: object, inputs: tf.TensorInfo[], dtype: 'float32', uniforms: Uniform[]): tf.TensorInfo;
  disposeData(dataId: tf.DataId): boolean;
}

export type KernelArgs = Parameters<tf.KernelFunc>[0];

/** A stock webgpu kernel's function, for our kernels to call directly (not through the engine). */
export function webgpuKernel(name: string): tf.KernelFunc {
  const config = tf.getKernel(name, 'webgpu');
  if (!config) throw new Error(`the webgpu backend has no ${name} kernel`);
  return config.kernelFunc;
}
