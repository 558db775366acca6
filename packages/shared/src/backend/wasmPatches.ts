import * as tf from '@tensorflow/tfjs';
import { conv2dFilterGradFast, conv2dTransposeFast } from './fastOps.js';

/**
 * Gradients that make the wasm backend able (and fast enough) to train the conv GANs:
 * - Conv2D: stock dfilter needs Conv2DBackpropFilter, which wasm lacks; stock dx runs the slow
 *   wasm Conv2DBackpropInput. Both become forward convs (see fastOps).
 * - Conv2DBackpropInput (forward op of tf.conv2dTranspose): same filter-gradient problem.
 * - BatchMatMul: wasm's matmul with transpose flags is far slower (x^T·dy: 600 ms vs 22 ms for
 *   3136x64 by 64x1024) than an explicit transpose followed by a plain matmul.
 * Gradients are global (not per backend), so these also run on cpu; they are exact there too.
 * Only NHWC, dilation 1 and no batch broadcasting are supported; anything else throws.
 */

let registered = false;

function unsupported(kernel: string, what: string): Error {
  return new Error(`wasm gradient patch for ${kernel}: ${what} is not supported`);
}

function checkConvAttrs(kernel: string, dataFormat: string, dilations: number | [number, number] = 1): void {
  if (dataFormat !== 'NHWC') throw unsupported(kernel, `dataFormat ${dataFormat} (only NHWC)`);
  const ones = typeof dilations === 'number' ? dilations === 1 : dilations.every((v) => v === 1);
  if (!ones) throw unsupported(kernel, `dilations ${JSON.stringify(dilations)} (only 1)`);
}

const conv2DGrad: tf.GradConfig = {
  kernelName: tf.Conv2D,
  inputsToSave: ['x', 'filter'],
  gradFunc: (dy, saved, attrs) => {
    const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
    const { strides, pad, dataFormat, dilations, dimRoundingMode } = attrs as unknown as tf.Conv2DAttrs;
    checkConvAttrs(tf.Conv2D, dataFormat, dilations);
    const dy4 = dy as tf.Tensor4D;
    return {
      x: () => conv2dTransposeFast(dy4, filter, x.shape, strides, pad, dimRoundingMode),
      filter: () => conv2dFilterGradFast(x, dy4, filter.shape, strides, pad, dimRoundingMode),
    };
  },
};

/** Forward: out = conv2dTranspose(dy, filter); so d/d(dy) is a forward conv of the upstream gradient. */
const conv2DBackpropInputGrad: tf.GradConfig = {
  kernelName: tf.Conv2DBackpropInput,
  inputsToSave: ['dy', 'filter'],
  gradFunc: (ddx, saved, attrs) => {
    const [dy, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
    const { strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as tf.Conv2DBackpropInputAttrs;
    checkConvAttrs(tf.Conv2DBackpropInput, dataFormat);
    const ddx4 = ddx as tf.Tensor4D;
    return {
      dy: () => tf.conv2d(ddx4, filter, strides, pad, 'NHWC', 1, dimRoundingMode),
      filter: () => conv2dFilterGradFast(ddx4, dy, filter.shape, strides, pad, dimRoundingMode),
    };
  },
};

function transposeLast2(t: tf.Tensor): tf.Tensor {
  const perm = t.shape.map((_, i) => i);
  const r = t.rank;
  [perm[r - 2], perm[r - 1]] = [r - 1, r - 2];
  return tf.transpose(t, perm);
}

/**
 * op(p)·op(q), op transposing the last two axes when its flag is set, with the transposes done
 * explicitly. wasm (XNNPACK) repacks the right-hand operand on every call, at about twice the
 * cost of a transpose per element, so the product is taken as (op(q)^T·op(p)^T)^T when that puts
 * a large operand (a weight matrix) on the left: 43 ms -> 16 ms for dy·W^T with W 3136x1024.
 */
function product(p: tf.Tensor, tp: boolean, q: tf.Tensor, tq: boolean): tf.Tensor {
  const r = p.rank;
  const rows = p.shape[tp ? r - 1 : r - 2] ?? 1;
  const cols = q.shape[tq ? r - 2 : r - 1] ?? 1;
  const outSize = (p.size / ((p.shape[r - 1] ?? 1) * (p.shape[r - 2] ?? 1))) * rows * cols;
  // Cost in element copies: 1 per transpose, 2 per repack of the right operand.
  const direct = (tp ? p.size : 0) + (tq ? q.size : 0) + 2 * q.size;
  const swapped = (tp ? 0 : p.size) + (tq ? 0 : q.size) + 2 * p.size + outSize;
  const t = transposeLast2;
  if (direct <= swapped) return tf.matMul(tp ? t(p) : p, tq ? t(q) : q);
  return t(tf.matMul(tq ? q : t(q), tp ? p : t(p)));
}

const batchMatMulGrad: tf.GradConfig = {
  kernelName: tf.BatchMatMul,
  inputsToSave: ['a', 'b'],
  gradFunc: (dyIn, saved, attrs) => {
    const [a, b] = saved as [tf.Tensor, tf.Tensor];
    const dy = dyIn as tf.Tensor;
    const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
    if (a.rank !== b.rank || a.shape.slice(0, -2).some((v, i) => v !== b.shape[i])) {
      throw unsupported(tf.BatchMatMul, `batch broadcasting of ${JSON.stringify(a.shape)} x ${JSON.stringify(b.shape)}`);
    }
    // The stock formulas, with matMul(x, y, tx, ty) replaced by product(x, tx, y, ty).
    if (!transposeA && !transposeB) return { a: () => product(dy, false, b, true), b: () => product(a, true, dy, false) };
    if (!transposeA) return { a: () => product(dy, false, b, false), b: () => product(dy, true, a, false) };
    if (!transposeB) return { a: () => product(b, false, dy, true), b: () => product(a, false, dy, false) };
    return { a: () => product(b, true, dy, true), b: () => product(dy, true, a, true) };
  },
};

/** Registers the patched gradients (global in tfjs); later calls do nothing. */
export function registerWasmGradientPatches(): void {
  if (registered) return;
  registered = true;
  for (const config of [conv2DGrad, conv2DBackpropInputGrad, batchMatMulGrad]) tf.registerGradient(config);
}
