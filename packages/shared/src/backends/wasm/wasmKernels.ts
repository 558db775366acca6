import * as tf from '@tensorflow/tfjs';
import { conv2dFilterGradFast, conv2dTransposeSubPixel } from './convFormulations.js';

/*
 * Kernels that make the wasm backend able (and fast enough) to train the conv GANs, registered
 * for 'wasm' in place of (or beside) its own; tfjs's stock gradients then run on them:
 * - Conv2DBackpropFilter: wasm has none, so a conv's filter gradient could not be taken at all.
 * - Conv2DBackpropInput (the transposed conv, and a conv's input gradient): wasm's own is slow;
 *   ours is in sub-pixel form, one stride-1 conv per stride phase, multiplying no inserted zero.
 * - BatchMatMul with transposed operands: wasm's matmul with transpose flags is far slower than
 *   an explicit transpose followed by a plain matmul (see product()).
 * - Conv2D: wasm's own, with explicit padding where its 'same' padding is wrong (conv2D()).
 * The first two are forward convs (XNNPACK) plus cheap rearrangements (see convFormulations).
 * Only NHWC, dilation 1 and no batch broadcasting are supported; anything else throws.
 */

type KernelArgs = Parameters<tf.KernelFunc>[0];
type Shape4 = [number, number, number, number];

function unsupported(kernel: string, what: string): Error {
  return new Error(`ganfleet's wasm ${kernel}: ${what} is not supported`);
}

function checkConvAttrs(kernel: string, dataFormat: string, dilations: number | [number, number] = 1): void {
  if (dataFormat !== 'NHWC') throw unsupported(kernel, `dataFormat ${dataFormat} (only NHWC)`);
  const ones = typeof dilations === 'number' ? dilations === 1 : dilations.every((v) => v === 1);
  if (!ones) throw unsupported(kernel, `dilations ${JSON.stringify(dilations)} (only 1)`);
}

/**
 * A kernel written with tf ops: the engine records no gradient inside a kernel, and a Tensor
 * returned from one is used as the kernel's output; tidy releases everything else it made.
 */
function opsKernel<I extends string>(f: (inputs: Record<I, tf.Tensor>, attrs: KernelArgs['attrs']) => tf.Tensor): tf.KernelFunc {
  return ({ inputs, attrs }) =>
    tf.tidy(() => {
      const tensors = Object.fromEntries(
        Object.entries(inputs).map(([name, info]) => [name, info instanceof tf.Tensor ? info : tf.engine().makeTensorFromTensorInfo(info as tf.TensorInfo)]),
      ) as Record<I, tf.Tensor>;
      return f(tensors, attrs);
    });
}

const conv2DBackpropInput = opsKernel<'dy' | 'filter'>(({ dy, filter }, attrs) => {
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  checkConvAttrs(tf.Conv2DBackpropInput, dataFormat);
  return conv2dTransposeSubPixel(dy as tf.Tensor4D, filter as tf.Tensor4D, inputShape, strides, pad, dimRoundingMode);
});

const conv2DBackpropFilter = opsKernel<'x' | 'dy'>(({ x, dy }, attrs) => {
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  checkConvAttrs(tf.Conv2DBackpropFilter, dataFormat);
  return conv2dFilterGradFast(x as tf.Tensor4D, dy as tf.Tensor4D, filterShape, strides, pad, dimRoundingMode);
});

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
 * a large operand (a weight matrix) on the left.
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

/** BatchMatMul with its transposes folded as product() chooses; without transposes, wasm's own. */
function batchMatMul(stock: tf.KernelFunc): tf.KernelFunc {
  const folded = opsKernel<'a' | 'b'>(({ a, b }, attrs) => {
    const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
    if (a.rank !== b.rank || a.shape.slice(0, -2).some((v, i) => v !== b.shape[i])) {
      throw unsupported(tf.BatchMatMul, `batch broadcasting of ${JSON.stringify(a.shape)} x ${JSON.stringify(b.shape)}`);
    }
    return product(a, transposeA, b, transposeB);
  });
  return (args) => {
    const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
    return transposeA || transposeB ? folded(args) : stock(args);
  };
}

/**
 * wasm's own Conv2D, except that 'same' padding with a filter smaller than the stride (which
 * the stock kernel computes as all zeros: it hands XNNPACK its SAME flag, measured with tfjs 4.22)
 * goes to it as the equivalent explicit padding. Such convs are the input gradients of
 * transposed convs with such filters.
 */
function conv2D(stock: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { x, filter } = args.inputs as unknown as { x: tf.TensorInfo; filter: tf.TensorInfo };
    const attrs = args.attrs as unknown as tf.Conv2DAttrs;
    if (attrs.pad !== 'same' || attrs.dataFormat !== 'NHWC') return stock(args);
    const info = tf.backend_util.computeConv2DInfo(x.shape as Shape4, filter.shape as Shape4, attrs.strides, attrs.dilations, 'same', attrs.dimRoundingMode);
    if (info.filterHeight >= info.strideHeight && info.filterWidth >= info.strideWidth) return stock(args);
    const { top, bottom, left, right } = info.padInfo;
    const pad = [
      [0, 0],
      [top, bottom],
      [left, right],
      [0, 0],
    ];
    return stock({ ...args, attrs: { ...args.attrs, pad } as unknown as tf.NamedAttrMap });
  };
}

/** wasm's own kernel of this name, before ours replaced it. */
const stockKernels = new Map<string, tf.KernelConfig>();

function replace(kernelName: string, make: (stock: tf.KernelFunc | undefined) => tf.KernelFunc): void {
  const current = tf.getKernel(kernelName, 'wasm');
  if (current && !stockKernels.has(kernelName)) stockKernels.set(kernelName, current);
  if (current) tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: make(stockKernels.get(kernelName)?.kernelFunc) });
}

/** Registers ganfleet's wasm kernels (again: a fresh registration replaces the previous one). */
export function registerWasmKernels(): void {
  replace(tf.Conv2D, (stock) => {
    if (!stock) throw new Error('the wasm backend has no Conv2D kernel');
    return conv2D(stock);
  });
  replace(tf.Conv2DBackpropInput, () => conv2DBackpropInput);
  replace(tf.Conv2DBackpropFilter, () => conv2DBackpropFilter);
  replace(tf.BatchMatMul, (stock) => {
    if (!stock) throw new Error('the wasm backend has no BatchMatMul kernel');
    return batchMatMul(stock);
  });
}
