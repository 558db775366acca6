import * as tf from '@tensorflow/tfjs';

/*
 * Convolution formulations for the wasm backend. Its own Conv2DBackpropInput is slow and it
 * has no Conv2DBackpropFilter at all, while its forward Conv2D (XNNPACK) is fast; so both are
 * rewritten here as forward Conv2Ds plus cheap Gather/Concat/Reshape/Slice/Transpose, every
 * tensor at rank <= 4 (above that wasm's Slice, also the gradient of Pad, runs generic JS code,
 * and its Transpose a generic loop 5x slower than at rank 4).
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
 * One output phase along one axis of a transposed convolution (stride s): the outputs
 * i = j·s + q, j in [0, count), are a stride-1 correlation of the input with the filter taps
 * that reach them, p + s·t for t in [0, taps) where p = (q + before) mod s, read in reverse.
 */
interface AxisPhase {
  /** Filter indices along this axis in the stride-1 conv's tap order (the reversed taps). */
  taps: number[];
  /** The input rows the conv reads, [start, end), clipped to the input: none when end <= start. */
  start: number;
  end: number;
  /** Zero padding around them (the reads that fall outside the input). */
  padBefore: number;
  padAfter: number;
}

/**
 * The s phases of one axis. Output i (in [0, outSize)) with i + before = r·s + a takes input r
 * through filter tap a; for i = j·s + q that is a = p + s·t with p = (q + before) mod s and
 * r = j + c - t, c = floor((q + before) / s). Each phase computes `count` = ceil(outSize / s)
 * outputs: exactly its own where s divides outSize, else at most one extra, cropped afterwards.
 */
function axisPhases(outSize: number, inSize: number, kernel: number, stride: number, before: number): { count: number; phases: AxisPhase[] } {
  const count = Math.ceil(outSize / stride);
  const phases = Array.from({ length: stride }, (_, q): AxisPhase => {
    const p = (q + before) % stride;
    const c = Math.floor((q + before) / stride);
    const n = p < kernel ? Math.ceil((kernel - p) / stride) : 0;
    const taps = Array.from({ length: n }, (_, u) => p + stride * (n - 1 - u));
    // Output j reads inputs j + c - (n - 1) ... j + c.
    const readStart = c - (n - 1);
    const readEnd = c + count;
    const start = Math.max(0, readStart);
    const end = Math.min(inSize, readEnd);
    return { taps, start, end, padBefore: start - readStart, padAfter: readEnd - end };
  });
  return { count, phases };
}

/**
 * Transposed convolution, equal to tf.conv2dTranspose (NHWC, filter [h, w, outChannels,
 * inChannels]), in sub-pixel form: for strides (sh, sw) the output splits into sh·sw phases
 * (output rows ≡ q mod sh, columns ≡ q' mod sw), each a stride-1 conv2d of x with only the
 * filter taps that reach it (spatially reversed, channels swapped); the phases, stacked,
 * interleave into the output with two transposes. No inserted zero is multiplied (zero
 * insertion, the previous formulation, multiplied sh·sw - 1 of them per input value: 55-65 % of
 * the conv model's stride-2 layers' multiply-adds, see bench/convMacs.ts); each phase computes
 * ceil(out / s) rows and columns, so only output sizes the stride does not divide cost a
 * cropped extra row or column.
 */
export function conv2dTransposeSubPixel(
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
      `conv2dTransposeSubPixel: input ${JSON.stringify(x.shape)} and filter ${JSON.stringify(filter.shape)} do not fit ` +
        `outputShape ${JSON.stringify(outputShape)} (a forward conv of that shape gives ${JSON.stringify(info.outShape)})`,
    );
  }
  return tf.tidy(() => {
    const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
    const [n, h, w] = x.shape;
    const [, outH, outW, outC] = outputShape;
    const rows = axisPhases(outH, h, kh, sh, info.padInfo.top);
    const cols = axisPhases(outW, w, kw, sw, info.padInfo.left);
    // [kh, kw, inChannels (x's), outChannels]: the conv2d filter layout for x.
    const swapped = tf.transpose(filter, [0, 1, 3, 2]);
    const phaseOutputs: tf.Tensor4D[] = [];
    for (const r of rows.phases) {
      for (const c of cols.phases) {
        if (r.taps.length === 0 || c.taps.length === 0 || r.end <= r.start || c.end <= c.start) {
          phaseOutputs.push(tf.zeros([n, rows.count, cols.count, outC]));
          continue;
        }
        const taps = tf.gather(tf.gather(swapped, tf.tensor1d(r.taps, 'int32'), 0), tf.tensor1d(c.taps, 'int32'), 1) as tf.Tensor4D;
        const read =
          r.start > 0 || r.end < h || c.start > 0 || c.end < w ? tf.slice(x, [0, r.start, c.start, 0], [n, r.end - r.start, c.end - c.start, -1]) : x;
        const padding: tf.backend_util.ExplicitPadding = [
          [0, 0],
          [r.padBefore, r.padAfter],
          [c.padBefore, c.padAfter],
          [0, 0],
        ];
        phaseOutputs.push(tf.conv2d(read, taps, 1, padding));
      }
    }
    if (phaseOutputs.length === 1) return phaseOutputs[0] as tf.Tensor4D;
    // Phases stacked along a new leading axis (a plain copy each; wasm's Concat along the last
    // axis copies in pieces of one pixel's channels, far slower), then interleaved by two
    // transposes, columns then rows (wasm's Transpose is slow above rank 4):
    // [sh, sw, n·R·C, outC] -> [sh, n·R·C, sw, outC] = [sh, n·R, C·sw·outC] -> [n·R, sh, C·sw·outC].
    const nr = n * rows.count;
    const stacked = tf.reshape(
      tf.concat(
        phaseOutputs.map((p) => tf.reshape(p, [1, -1])),
        0,
      ),
      [sh, sw, nr * cols.count, outC],
    );
    const columns = tf.reshape(tf.transpose(stacked, [0, 2, 1, 3]), [sh, nr, cols.count * sw * outC]);
    const interleaved = tf.reshape(tf.transpose(columns, [1, 0, 2]), [n, rows.count * sh, cols.count * sw, outC]) as tf.Tensor4D;
    return rows.count * sh === outH && cols.count * sw === outW ? interleaved : tf.slice(interleaved, [0, 0, 0, 0], [n, outH, outW, outC]);
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
