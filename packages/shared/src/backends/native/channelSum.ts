import * as tf from '@tensorflow/tfjs';
import type { NativeKernelFactory, WasmHeap } from './kernels.js';

/*
 * Sum over every axis but the last (what each bias gradient asks for) for the wasm backend under
 * `native`: one pass over the heap with a float64 accumulator per channel, in row order. wasm's own
 * Sum first transposes the channels to the front. Any other reduction goes to wasm's kernel.
 */

export const nativeSum: NativeKernelFactory = (_addon, fallback) => (args) => {
  const { x } = args.inputs as unknown as { x: tf.TensorInfo };
  const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
  const rank = x.shape.length;
  if (x.dtype !== 'float32' || rank < 2 || x.shape.some((d) => d === 0)) return fallback(args);
  const axes = [...new Set(tf.util.parseAxisParam(axis, x.shape))].sort((a, b) => a - b);
  if (axes.length !== rank - 1 || axes.some((a, i) => a !== i)) return fallback(args);
  const channels = x.shape[rank - 1] as number;
  const heap = args.backend as unknown as WasmHeap;
  const out = heap.makeOutput(keepDims ? [...new Array<number>(rank - 1).fill(1), channels] : [channels], 'float32');
  const values = heap.typedArrayFromHeap(x);
  const sums = new Float64Array(channels);
  for (let i = 0; i < values.length; i += channels) for (let c = 0; c < channels; c++) sums[c] = (sums[c] as number) + (values[i + c] as number);
  heap.typedArrayFromHeap(out).set(sums);
  return out;
};
