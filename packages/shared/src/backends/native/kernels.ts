import * as tf from '@tensorflow/tfjs';
import type { Conv2DGeometry } from '../../../native/index.js';
import type { NativeAddon } from './addon.js';

/*
 * Kernels of the wasm backend computed by the native addon, in place on the wasm heap: each makes
 * its output with the backend's makeOutput (which may grow the heap, detaching every view taken
 * before it), then takes Float32Array views of inputs and output and hands them to the addon.
 * Whatever the addon does not cover (another data format or dtype, an activation other than
 * linear or relu, prelu weights, biases broadcast other than per channel or as one value, batch
 * broadcasting that reorders matrices, empty
 * tensors) goes to the kernel that was registered before (`fallback`): wasm's own or ganfleet's.
 */

/** The part of tfjs-backend-wasm's BackendWasm these kernels use. */
export interface WasmHeap {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): tf.TypedArray;
}

type KernelArgs = Parameters<tf.KernelFunc>[0];
type Shape4 = [number, number, number, number];

/** Makes a kernel from the addon and the kernel it stands in for. */
export type NativeKernelFactory = (addon: NativeAddon, fallback: tf.KernelFunc) => tf.KernelFunc;

const heapOf = (args: KernelArgs): WasmHeap => args.backend as unknown as WasmHeap;

/** A view of a tensor's values on the heap: take it after the last makeOutput of the call. */
const view = (heap: WasmHeap, info: tf.TensorInfo): Float32Array => heap.typedArrayFromHeap(info) as Float32Array;

const allFloat32 = (...infos: (tf.TensorInfo | undefined)[]): boolean => infos.every((t) => t === undefined || t.dtype === 'float32');
const isEmpty = (...infos: tf.TensorInfo[]): boolean => infos.some((t) => t.shape.some((d) => d === 0));
const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

type ActivationName = 'none' | 'relu';

/** The addon's epilogue for a fused kernel's activation, or undefined if it has none for it. */
function epilogue(activation: unknown): ActivationName | undefined {
  if (activation === undefined || activation === null || activation === 'linear') return 'none';
  return activation === 'relu' ? 'relu' : undefined;
}

/**
 * Whether the addon can add this bias: none, one value per output channel (along the last axis
 * only), or a single value for all of them.
 */
function supportedBias(bias: tf.TensorInfo | undefined, channels: number): boolean {
  if (bias === undefined) return true;
  const size = tf.util.sizeFromShape(bias.shape);
  return size === 1 || (size === channels && bias.shape[bias.shape.length - 1] === channels);
}

/** The bias as `channels` values for the addon (take it after makeOutput: it may be a heap view). */
function biasValues(heap: WasmHeap, bias: tf.TensorInfo | undefined, channels: number): Float32Array | null {
  if (bias === undefined) return null;
  const values = view(heap, bias);
  return values.length === channels ? values : new Float32Array(channels).fill(values[0] as number);
}

interface ConvAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/**
 * The addon's geometry for the convolution from an input of `inShape` with `filterShape`, or
 * undefined when the addon's output size would not be tfjs's (so the fallback runs).
 */
function convGeometry(
  addon: NativeAddon,
  inShape: number[],
  filterShape: number[],
  attrs: ConvAttrs,
): { geometry: Conv2DGeometry; outShape: Shape4 } | undefined {
  if ((attrs.dataFormat ?? 'NHWC') !== 'NHWC' || inShape.length !== 4 || filterShape.length !== 4) return undefined;
  const info = tf.backend_util.computeConv2DInfo(
    inShape as Shape4,
    filterShape as Shape4,
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  const { top, bottom, left, right } = info.padInfo;
  if (Math.min(top, bottom, left, right) < 0) return undefined;
  const geometry: Conv2DGeometry = {
    batch: info.batchSize,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    inChannels: info.inChannels,
    outChannels: info.outChannels,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    dilationHeight: info.dilationHeight,
    dilationWidth: info.dilationWidth,
    padTop: top,
    padBottom: bottom,
    padLeft: left,
    padRight: right,
  };
  const { outHeight, outWidth } = addon.conv2dOutputSize(geometry);
  if (outHeight !== info.outHeight || outWidth !== info.outWidth) return undefined;
  return { geometry, outShape: info.outShape as Shape4 };
}

/** Conv2D and FusedConv2D (bias, relu epilogue). */
function forwardConv(fused: boolean): NativeKernelFactory {
  return (addon, fallback) => (args) => {
    const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined> as {
      x: tf.TensorInfo;
      filter: tf.TensorInfo;
      bias?: tf.TensorInfo;
      preluActivationWeights?: tf.TensorInfo;
    };
    const attrs = args.attrs as unknown as ConvAttrs & { activation?: string };
    const activation = fused ? epilogue(attrs.activation) : 'none';
    if (activation === undefined || preluActivationWeights || !allFloat32(x, filter, bias) || isEmpty(x, filter)) return fallback(args);
    const plan = convGeometry(addon, x.shape, filter.shape, attrs);
    if (!plan || !supportedBias(bias, plan.geometry.outChannels)) return fallback(args);
    const heap = heapOf(args);
    const out = heap.makeOutput(plan.outShape, 'float32');
    const biasView = biasValues(heap, bias, plan.geometry.outChannels);
    addon.conv2d({ ...plan.geometry, x: view(heap, x), filter: view(heap, filter), y: view(heap, out), bias: biasView, activation });
    return out;
  };
}

/** dx of a conv (also the transposed conv): attrs.inputShape is dx's shape. */
const conv2DBackpropInput: NativeKernelFactory = (addon, fallback) => (args) => {
  const { dy, filter } = args.inputs as unknown as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs as unknown as ConvAttrs & { inputShape: number[] };
  if (!allFloat32(dy, filter) || isEmpty(dy, filter) || attrs.inputShape.some((d) => d === 0)) return fallback(args);
  const plan = convGeometry(addon, attrs.inputShape, filter.shape, { ...attrs, dilations: 1 });
  if (!plan || !sameShape(plan.outShape, dy.shape)) return fallback(args);
  const heap = heapOf(args);
  const out = heap.makeOutput([...attrs.inputShape], 'float32');
  addon.conv2dBackpropInput({ ...plan.geometry, dy: view(heap, dy), filter: view(heap, filter), dx: view(heap, out) });
  return out;
};

/** dfilter of a conv: attrs.filterShape is its shape. */
const conv2DBackpropFilter: NativeKernelFactory = (addon, fallback) => (args) => {
  const { x, dy } = args.inputs as unknown as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as unknown as ConvAttrs & { filterShape: number[] };
  if (!allFloat32(x, dy) || isEmpty(x, dy) || attrs.filterShape.some((d) => d === 0)) return fallback(args);
  const plan = convGeometry(addon, x.shape, attrs.filterShape, { ...attrs, dilations: 1 });
  if (!plan || !sameShape(plan.outShape, dy.shape)) return fallback(args);
  const heap = heapOf(args);
  const out = heap.makeOutput([...attrs.filterShape], 'float32');
  addon.conv2dBackpropFilter({ ...plan.geometry, x: view(heap, x), dy: view(heap, dy), dfilter: view(heap, out) });
  return out;
};

interface MatMulPlan {
  outShape: number[];
  batch: number;
  m: number;
  n: number;
  k: number;
  /** Elements between consecutive matrices of a and b; 0 for one broadcast over the batch. */
  aStride: number;
  bStride: number;
}

/**
 * op(a)·op(b) over the leading (batch) axes, or undefined where broadcasting them would reorder
 * matrices (each side must have all the output's matrices, or one).
 */
function matMulPlan(a: tf.TensorInfo, b: tf.TensorInfo, transA: boolean, transB: boolean): MatMulPlan | undefined {
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) return undefined;
  const [a0, a1] = [a.shape[ra - 2] as number, a.shape[ra - 1] as number];
  const [b0, b1] = [b.shape[rb - 2] as number, b.shape[rb - 1] as number];
  const [m, k] = transA ? [a1, a0] : [a0, a1];
  const [kb, n] = transB ? [b1, b0] : [b0, b1];
  if (k !== kb) return undefined;
  let outer: number[];
  try {
    outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  } catch {
    return undefined;
  }
  const batch = tf.util.sizeFromShape(outer);
  const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
  const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
  if ((batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) return undefined;
  return { outShape: [...outer, m, n], batch, m, n, k, aStride: batchA === 1 ? 0 : m * k, bStride: batchB === 1 ? 0 : k * n };
}

/** Runs the plan's GEMMs: one per matrix, or one in all where a plain a shares one b. */
function runMatMul(
  addon: NativeAddon,
  plan: MatMulPlan,
  transA: boolean,
  transB: boolean,
  views: { a: Float32Array; b: Float32Array; c: Float32Array; bias: Float32Array | null },
  activation: ActivationName,
): void {
  const { batch, m, n, k, aStride, bStride } = plan;
  const { a, b, c, bias } = views;
  if (batch > 1 && !transA && aStride > 0 && bStride === 0) {
    // The matrices of a stacked are one (batch·m) x k matrix.
    addon.sgemm({ transA, transB, m: batch * m, n, k, a, b, c, bias, activation });
    return;
  }
  for (let i = 0; i < batch; i++) {
    addon.sgemm({ transA, transB, m, n, k, a, aOffset: i * aStride, b, bOffset: i * bStride, c, cOffset: i * m * n, bias, activation });
  }
}

/** BatchMatMul and _FusedMatMul (bias, relu epilogue); transposes are folded into the addon's packing. */
function matMul(fused: boolean): NativeKernelFactory {
  return (addon, fallback) => (args) => {
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined> as {
      a: tf.TensorInfo;
      b: tf.TensorInfo;
      bias?: tf.TensorInfo;
      preluActivationWeights?: tf.TensorInfo;
    };
    const attrs = args.attrs as unknown as { transposeA: boolean; transposeB: boolean; activation?: string };
    const transA = Boolean(attrs.transposeA);
    const transB = Boolean(attrs.transposeB);
    const activation = fused ? epilogue(attrs.activation) : 'none';
    if (activation === undefined || preluActivationWeights || !allFloat32(a, b, bias) || isEmpty(a, b)) return fallback(args);
    const plan = matMulPlan(a, b, transA, transB);
    if (!plan || !supportedBias(bias, plan.n)) return fallback(args);
    const heap = heapOf(args);
    const out = heap.makeOutput(plan.outShape, 'float32');
    const views = { a: view(heap, a), b: view(heap, b), c: view(heap, out), bias: biasValues(heap, bias, plan.n) };
    runMatMul(addon, plan, transA, transB, views, activation);
    return out;
  };
}

export const nativeConv2D = forwardConv(false);
export const nativeFusedConv2D = forwardConv(true);
export const nativeConv2DBackpropInput = conv2DBackpropInput;
export const nativeConv2DBackpropFilter = conv2DBackpropFilter;
export const nativeBatchMatMul = matMul(false);
export const nativeFusedMatMul = matMul(true);
