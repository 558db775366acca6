import * as tf from '@tensorflow/tfjs';
import type { NativeKernelFactory, WasmHeap } from './kernels.js';

/*
 * ganfleet's RELU_GRAD kernel (dy where x > 0, else 0) for the wasm backend under `native`: one
 * pass over the heap instead of wasm's Step and Multiply. A backend that registers it also runs
 * ganfleet's dense and conv layers fused (ops/fusedLayers.ts), i.e. as _FusedMatMul and
 * FusedConv2D, whose bias and ReLU the addon applies in its GEMM epilogue.
 */

export const nativeReluGrad: NativeKernelFactory = () => (args) => {
  const { dy, other } = args.inputs as unknown as { dy: tf.TensorInfo; other: tf.TensorInfo };
  if (dy.dtype !== 'float32' || other.dtype !== 'float32' || tf.util.sizeFromShape(dy.shape) !== tf.util.sizeFromShape(other.shape)) {
    throw new Error(
      `ganfleet's native relu gradient: expected float32 dy and x of one size, got ${dy.dtype} ${JSON.stringify(dy.shape)} and ${other.dtype} ${JSON.stringify(other.shape)}`,
    );
  }
  const heap = args.backend as unknown as WasmHeap;
  const out = heap.makeOutput([...dy.shape], 'float32');
  const g = heap.typedArrayFromHeap(dy);
  const x = heap.typedArrayFromHeap(other);
  const dx = heap.typedArrayFromHeap(out);
  // dy·step(x), as tfjs's own gradient (so NaN and infinite dy propagate, and -0 stays -0);
  // multiplying by the 0/1 of the comparison keeps the loop free of branches that random signs
  // would mispredict (4x slower).
  for (let i = 0; i < dx.length; i++) dx[i] = (g[i] as number) * +((x[i] as number) > 0);
  return out;
};
