import * as tf from '@tensorflow/tfjs';
import { RELU_GRAD } from '../../ops/index.js';
import type { NativeAddon } from './addon.js';
import {
  type NativeKernelFactory,
  nativeBatchMatMul,
  nativeConv2D,
  nativeConv2DBackpropFilter,
  nativeConv2DBackpropInput,
  nativeFusedConv2D,
  nativeFusedMatMul,
} from './kernels.js';
import { nativeBatchNormKernels } from './batchNorm.js';
import { nativeSum } from './channelSum.js';
import { nativeIdentity } from './identity.js';
import { nativeAvgPoolGrad } from './pooling.js';
import { nativeReluGrad } from './reluGrad.js';

/*
 * The `native` backend is the tfjs wasm backend with these kernels registered over the ones it
 * had (wasm's own, or ganfleet's from wasm/wasmKernels.ts), which they fall back to. Selecting
 * plain wasm again puts those back. The addon computes the convolutions and matrix products;
 * once those are fast, the memory-bound kernels around them dominate a step, so the ones the
 * conv model spends most on there are JavaScript loops over the heap (no copy in or out):
 * ganfleet's ReLU gradient (which also makes the layers run fused, their bias and ReLU in the
 * addon's epilogue) and batch-norm kernels, the bias gradients' Sum, 2x2 average pooling's gradient, and an
 * Identity that shares its input's buffer instead of copying it.
 */

const NATIVE_KERNELS: Record<string, NativeKernelFactory> = {
  [tf.Conv2D]: nativeConv2D,
  [tf.FusedConv2D]: nativeFusedConv2D,
  [tf.Conv2DBackpropInput]: nativeConv2DBackpropInput,
  [tf.Conv2DBackpropFilter]: nativeConv2DBackpropFilter,
  [tf.BatchMatMul]: nativeBatchMatMul,
  [tf._FusedMatMul]: nativeFusedMatMul,
  [RELU_GRAD]: nativeReluGrad,
  ...nativeBatchNormKernels,
  [tf.Sum]: nativeSum,
  [tf.AvgPoolGrad]: nativeAvgPoolGrad,
  [tf.Identity]: nativeIdentity,
};

/** Each kernel name we registered over, with the config that was there (undefined: none). */
const replaced = new Map<string, tf.KernelConfig | undefined>();

function missing(kernelName: string): tf.KernelFunc {
  return () => {
    throw new Error(`ganfleet's native ${kernelName}: this configuration is not supported and the wasm backend has no kernel to fall back to`);
  };
}

/** Registers the addon's kernels for 'wasm' (again: a fresh registration replaces the previous one). */
export function registerNativeKernels(addon: NativeAddon): void {
  unregisterNativeKernels();
  for (const [kernelName, make] of Object.entries(NATIVE_KERNELS)) {
    const previous = tf.getKernel(kernelName, 'wasm');
    replaced.set(kernelName, previous);
    if (previous) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: make(addon, previous?.kernelFunc ?? missing(kernelName)) });
  }
}

/** Puts back the kernels registerNativeKernels replaced; does nothing when none are registered. */
export function unregisterNativeKernels(): void {
  for (const [kernelName, previous] of replaced) {
    if (tf.getKernel(kernelName, 'wasm')) tf.unregisterKernel(kernelName, 'wasm');
    if (previous) tf.registerKernel(previous);
  }
  replaced.clear();
}

/** Whether the native kernels are registered now. */
export function nativeKernelsRegistered(): boolean {
  return replaced.size > 0;
}
