import * as tf from '@tensorflow/tfjs';

/*
 * Convolution formulations for the wasm backend. Its own Conv2DBackpropInput is slow and it
 * has no Conv2DBackpropFilter at all, while its forward Conv2D (XNNPACK) is fast; so both are
 * rewritten here as one forward Conv2D plus cheap Pad/Reshape/Slice/Transpose/Reverse, every
 * tensor at rank <= 4 (above that wasm's Slice, also the gradient of Pad, runs generic JS code).
 */

export type ConvPad = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
export type Shape4D = [number, number, number, number];
type RoundingMode = 'floor' | 'round' | 'ceil';

function forwardInfo(
  inShape: Shape4D,
  filterShape: Shape4D,
  strides: number | [number, number],
  pad: ConvPad,
  rounding: RoundingMode | undefined,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(inShape, filterShape, strides, 1, pad, rounding, false, 'channelsLast');
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Splits signed row/column paddings: negative amounts (rows no output reads) are cropped off
 * here, positive ones returned as conv2d's explicit padding, which costs no copy.
 */
function cropNegative(x: tf.Tensor4D, top: number, bottom: number, left: number, right: number): { x: tf.Tensor4D; pad: tf.backend_util.ExplicitPadding } {
  const [n, h, w, c] = x.shape;
  const ct = Math.max(0, -top);
  const cb = Math.max(0, -bottom);
  const cl = Math.max(0, -left);
  const cr = Math.max(0, -right);
  const cropped = ct + cb + cl + cr > 0 ? tf.slice(x, [0, ct, cl, 0], [n, h - ct - cb, w - cl - cr, c]) : x;
  const pad: tf.backend_util.ExplicitPadding = [
    [0, 0],
    [Math.max(0, top), Math.max(0, bottom)],
    [Math.max(0, left), Math.max(0, right)],
    [0, 0],
  ];
  return { x: cropped, pad };
}

/**
 * Views t as [a, b, 1, d] and pads that length-1 axis to `stride`: stride - 1 zeros after each
 * of the a * b blocks of d values.
 */
function spread(t: tf.Tensor, a: number, b: number, d: number, stride: number): tf.Tensor4D {
  return tf.pad(tf.reshape(t, [a, b, 1, d]), [
    [0, 0],
    [0, 0],
    [0, stride - 1],
    [0, 0],
  ]);
}

/**
 * Transposed convolution, equal to tf.conv2dTranspose (NHWC, filter [h, w, outChannels,
 * inChannels]): zeros are inserted between input pixels (stride - 1 of them), then a stride-1
 * conv2d with the spatially flipped, channel-swapped filter runs over the result.
 */
export function conv2dTransposeFast(
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  outputShape: Shape4D,
  strides: number | [number, number],
  pad: ConvPad,
  dimRoundingMode?: RoundingMode,
): tf.Tensor4D {
  // The transposed conv is the input-gradient of the forward conv from outputShape to x.shape.
  const info = forwardInfo(outputShape, filter.shape, strides, pad, dimRoundingMode);
  if (x.rank !== 4 || !sameShape(x.shape, info.outShape) || outputShape[3] !== filter.shape[2]) {
    throw new Error(
      `conv2dTransposeFast: input ${JSON.stringify(x.shape)} and filter ${JSON.stringify(filter.shape)} do not fit ` +
        `outputShape ${JSON.stringify(outputShape)} (a forward conv of that shape gives ${JSON.stringify(info.outShape)})`,
    );
  }
  return tf.tidy(() => {
    const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
    const [n, h, w, c] = x.shape;
    // Zero insertion: columns, then rows (each as whole rows of w * sw * c values).
    let z: tf.Tensor = x;
    if (sw > 1) z = spread(z, n * h, w, c, sw);
    if (sh > 1) z = spread(z, n, h, w * sw * c, sh);
    const zeroed: tf.Tensor4D = tf.reshape(z, [n, h * sh, w * sw, c]);
    const { top, left } = info.padInfo;
    // The trailing zeros of the last row and column count against the bottom/right padding.
    const padded = cropNegative(zeroed, kh - 1 - top, outputShape[1] + top - h * sh, kw - 1 - left, outputShape[2] + left - w * sw);
    const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]);
    return tf.conv2d(padded.x, flipped, 1, padded.pad);
  });
}

/**
 * Gradient of conv2d(x, filter, strides, pad) w.r.t. a filter of filterShape, given dy.
 * dfilter[a, b, i, o] = sum over n, r, q of xpad[n, r*s + a, q*s + b, i] * dy[n, r, q, o]: a
 * forward conv2d of x transposed to [i, H, W, n] with dy transposed to [oh, ow, n, o] as its
 * filter, dilated by the stride (batch and channels swap roles).
 */
export function conv2dFilterGradFast(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: Shape4D,
  strides: number | [number, number],
  pad: ConvPad,
  dimRoundingMode?: RoundingMode,
): tf.Tensor4D {
  const info = forwardInfo(x.shape, filterShape, strides, pad, dimRoundingMode);
  if (dy.rank !== 4 || !sameShape(dy.shape, info.outShape)) {
    throw new Error(
      `conv2dFilterGradFast: dy ${JSON.stringify(dy.shape)} does not match the conv output ${JSON.stringify(info.outShape)} ` +
        `of input ${JSON.stringify(x.shape)} and filter ${JSON.stringify(filterShape)}`,
    );
  }
  return tf.tidy(() => {
    const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, outHeight: oh, outWidth: ow } = info;
    const { top, left } = info.padInfo;
    // Bottom/right padding chosen so the output is exactly kh x kw; negative when the forward
    // conv never read the last rows/columns.
    const xt = tf.transpose(x, [3, 1, 2, 0]);
    const padded = cropNegative(xt, top, kh + (oh - 1) * sh - x.shape[1] - top, left, kw + (ow - 1) * sw - x.shape[2] - left);
    const dyt = tf.transpose(dy, [1, 2, 0, 3]);
    const g = tf.conv2d(padded.x, dyt, 1, padded.pad, 'NHWC', [sh, sw]);
    return tf.transpose(g, [1, 2, 0, 3]);
  });
}
