import * as tf from '@tensorflow/tfjs';
import type { NativeKernelFactory, WasmHeap } from './kernels.js';

/*
 * The gradient of average pooling without overlap or padding (a window per stride, 'valid': the
 * conv model's 2x2 pools) for the wasm backend under `native`, as a loop over the heap: wasm's
 * AvgPoolGrad is a generic loop ~5x slower. (Its AvgPool forwards is XNNPACK's, as fast as a
 * JavaScript loop.) Other configurations go to wasm's kernel.
 */

interface PoolAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** The pool's geometry when it is one the loops below handle. */
function tiling(inShape: number[], attrs: PoolAttrs): tf.backend_util.Conv2DInfo | undefined {
  if (inShape.length !== 4 || inShape.some((d) => d === 0)) return undefined;
  const info = tf.backend_util.computePool2DInfo(
    inShape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { top, bottom, left, right } = info.padInfo;
  const tiles = info.filterHeight === info.strideHeight && info.filterWidth === info.strideWidth;
  return tiles && top === 0 && bottom === 0 && left === 0 && right === 0 && info.outHeight > 0 && info.outWidth > 0 ? info : undefined;
}

export const nativeAvgPoolGrad: NativeKernelFactory = (_addon, fallback) => (args) => {
  const { dy, input } = args.inputs as unknown as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const info = dy.dtype === 'float32' ? tiling(input.shape, args.attrs as unknown as PoolAttrs) : undefined;
  if (!info || info.outShape.some((d, i) => d !== dy.shape[i])) return fallback(args);
  const heap = args.backend as unknown as WasmHeap;
  const out = heap.makeOutput([...input.shape], 'float32');
  const g = heap.typedArrayFromHeap(dy);
  const dx = heap.typedArrayFromHeap(out);
  const { batchSize, inHeight, inWidth, inChannels: ch, outHeight, outWidth, filterHeight: fh, filterWidth: fw } = info;
  const inv = 1 / (fh * fw);
  // Rows and columns past the last whole window get no gradient.
  if (outHeight * fh !== inHeight || outWidth * fw !== inWidth) dx.fill(0);
  let o = 0;
  for (let n = 0; n < batchSize; n++) {
    for (let i = 0; i < outHeight; i++) {
      for (let j = 0; j < outWidth; j++, o += ch) {
        for (let a = 0; a < fh; a++) {
          const row = ((n * inHeight + i * fh + a) * inWidth + j * fw) * ch;
          for (let b = 0; b < fw; b++) for (let c = 0; c < ch; c++) dx[row + b * ch + c] = (g[o + c] as number) * inv;
        }
      }
    }
  }
  return out;
};
