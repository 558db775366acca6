import type * as tf from '@tensorflow/tfjs';
import type { NativeKernelFactory } from './kernels.js';

/*
 * Identity without a copy for the wasm backend under `native`: the output shares the input's
 * heap buffer (reference counted, as wasm's own Reshape does; tensors are immutable). tfjs runs
 * Identity to keep every tensor a gradient will need, so wasm's copying one moved tens of MB per
 * conv step.
 */

interface RefCounted {
  incRef(dataId: tf.DataId): void;
}

export const nativeIdentity: NativeKernelFactory = (_addon, fallback) => (args) => {
  const { x } = args.inputs as unknown as { x: tf.TensorInfo };
  if (x.dtype === 'string') return fallback(args);
  (args.backend as unknown as RefCounted).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
};
