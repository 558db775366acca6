/**
 * ganfleet_native: fast single-precision CPU kernels (SGEMM and NHWC 2-D
 * convolutions) for registration as TensorFlow.js `wasm` backend kernels.
 *
 * Importing this module throws an Error when the addon binary is missing or
 * cannot load; import it with `await import()` inside try/catch and fall back.
 *
 * Buffers: any Float32Array view (its byteOffset is honoured), plus an element
 * offset into it, so views of a WebAssembly.Memory can be passed without
 * copying. Outputs are written in place and must not overlap the inputs.
 * The addon keeps no reference to any buffer after a call returns.
 *
 * Determinism: results are bit-identical for every thread count (threads only
 * split output tiles; each element is reduced in one fixed order). Different
 * ISA paths may differ in the last bits.
 */

/** Instruction-set path: AVX-512F, AVX2+FMA, or portable C++ (any CPU). */
export type Isa = 'avx512' | 'avx2' | 'portable';
/** Fused epilogue activation (TensorFlow.js _FusedMatMul / FusedConv2D). */
export type Activation = 'none' | 'relu';

/** Path in use: the best the CPU has, or GANFLEET_NATIVE_ISA (clamped) at load. */
export function isa(): Isa;
/** Paths this CPU supports, lowest first ('portable' always). */
export function supportedIsas(): Isa[];
/** Forces a path (tests, comparisons); throws RangeError if the CPU lacks it. */
export function setIsa(isa: Isa): void;
/** Size of this thread's (or worker's) pool, the caller included; default 1. */
export function threads(): number;
/** Resizes the pool (1..256): the caller decides, e.g. 1 per worker process. */
export function setThreads(n: number): void;

/**
 * C = act(alpha * op(A) * op(B) + beta * C + bias), row-major.
 * op(A) is m x k (A stored k x m when transA), op(B) is k x n (B stored n x k
 * when transB): transposes are folded into packing, so pass them rather than
 * transposing first. With beta = 0, C is not read (may hold garbage).
 */
export interface SgemmParams {
  transA?: boolean;
  transB?: boolean;
  m: number;
  n: number;
  k: number;
  /** Default 1. */
  alpha?: number;
  a: Float32Array;
  aOffset?: number;
  /** Row stride of A as stored; default its column count. */
  lda?: number;
  b: Float32Array;
  bOffset?: number;
  ldb?: number;
  /** Default 0. */
  beta?: number;
  c: Float32Array;
  cOffset?: number;
  ldc?: number;
  /** n values, added per output column after the product. */
  bias?: Float32Array | null;
  biasOffset?: number;
  activation?: Activation;
}
export function sgemm(params: SgemmParams): void;

/**
 * A convolution of x [batch, inHeight, inWidth, inChannels] with a filter
 * [filterHeight, filterWidth, inChannels, outChannels] (TensorFlow layouts)
 * into y [batch, outHeight, outWidth, outChannels], where
 * outHeight = floor((inHeight + padTop + padBottom - (filterHeight - 1) * dilationHeight - 1) / strideHeight) + 1
 * (see conv2dOutputSize). TensorFlow.js's Conv2DInfo carries every field
 * (padInfo.top/bottom/left/right become the pads).
 */
export interface Conv2DGeometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
  /** Default 1. */
  strideHeight?: number;
  strideWidth?: number;
  /** Default 1. */
  dilationHeight?: number;
  dilationWidth?: number;
  /** Explicit zero padding; default 0 ('valid'). */
  padTop?: number;
  padBottom?: number;
  padLeft?: number;
  padRight?: number;
}

export function conv2dOutputSize(geometry: Conv2DGeometry): { outHeight: number; outWidth: number };

/** y = act(conv2d(x, filter) + bias); bias has outChannels values. */
export interface Conv2DParams extends Conv2DGeometry {
  x: Float32Array;
  xOffset?: number;
  filter: Float32Array;
  filterOffset?: number;
  y: Float32Array;
  yOffset?: number;
  bias?: Float32Array | null;
  biasOffset?: number;
  activation?: Activation;
}
export function conv2d(params: Conv2DParams): void;

/**
 * dx = act(d conv2d / dx applied to dy + bias), for the conv described by the
 * geometry (x is dx's shape). This is also conv2dTranspose: tf.conv2dTranspose(
 * v, filter, outShape, strides, pad) is this with dy = v and dx of outShape, the
 * geometry being that of the conv from outShape to v's shape. Strided cases
 * never multiply inserted zeros. bias has inChannels values.
 */
export interface Conv2DBackpropInputParams extends Conv2DGeometry {
  dy: Float32Array;
  dyOffset?: number;
  filter: Float32Array;
  filterOffset?: number;
  dx: Float32Array;
  dxOffset?: number;
  bias?: Float32Array | null;
  biasOffset?: number;
  activation?: Activation;
}
export function conv2dBackpropInput(params: Conv2DBackpropInputParams): void;

/** dfilter = sum over the batch and output pixels of x patches times dy (overwritten, not accumulated). */
export interface Conv2DBackpropFilterParams extends Conv2DGeometry {
  x: Float32Array;
  xOffset?: number;
  dy: Float32Array;
  dyOffset?: number;
  dfilter: Float32Array;
  dfilterOffset?: number;
}
export function conv2dBackpropFilter(params: Conv2DBackpropFilterParams): void;

/*
 * The coordinator's update loops: the same IEEE float64 operations, in the same order, as
 * ganfleet's JavaScript ones (packages/shared/src/model/updateLoops.ts), so results are equal bit
 * for bit on every ISA path. Arrays are whole Float32Arrays (no offsets); outputs must not overlap
 * inputs.
 */

/** One Adam step on values [from, to) (default: all): m, v and p updated in place from g. */
export interface AdamUpdateParams {
  p: Float32Array;
  g: Float32Array;
  m: Float32Array;
  v: Float32Array;
  from?: number;
  to?: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** lr / (1 - beta1^t). */
  rate: number;
  /** 1 / (1 - beta2^t). */
  invC2: number;
  /** to - from values that receive p's new values too (the update's outgoing body, written in the same pass). */
  copy?: Float32Array;
}
export function adamUpdate(params: AdamUpdateParams): void;

/** avg[i] = beta * avg[i] + (1 - beta) * p[i] on [from, to) (default: all). */
export function emaFold(params: { avg: Float32Array; p: Float32Array; from?: number; to?: number; beta: number }): void;

/** out[i] = float32((w0 * x0[i] + w1 * x1[i]) / total); returns the largest |out[i]|, NaN if any is NaN. */
export function meanOfTwo(params: {
  out: Float32Array;
  x0: Float32Array | Float64Array;
  w0: number;
  x1: Float32Array | Float64Array;
  w1: number;
  total: number;
}): number;

/**
 * s[i] = w0·x0[i] + w1·x1[i] + … added in that order in float64, every addition checked with
 * TwoSum. Without `out` the sums go to `acc`; with it, float32(s[i] / total) goes to `out` (acc
 * is not used). Returns the coordinates where an addition was not exact (ascending) and the
 * largest |out[i]| (NaN if any is NaN; 0 without out).
 */
export function sumTerms(params: {
  terms: readonly { values: Float32Array | Float64Array; weight: number }[];
  acc?: Float64Array | null;
  out?: Float32Array | null;
  total?: number;
}): { worst: number; redo: number[] };

/**
 * Σ values[i]² in four running sums (values[i] into sum i % 4, the last length % 4 into the first),
 * added as (s0 + s1) + (s2 + s3), and the largest |values[i]| (NaN if any is NaN). With `into` (the
 * values' type and length) each value is copied there as it is read, so what was summed is what was
 * copied even while another process writes `values`.
 */
export function sumOfSquares<A extends Float32Array | Float64Array>(values: A, into?: A): { squares: number; worst: number };

/**
 * An ArrayBuffer over the first `bytes` bytes of the regular file at `path` (a file in /dev/shm,
 * owned by this process's user, not reached through a symbolic link), mapped shared: every process that maps the file sees the others' writes. Unmapped when the
 * buffer is collected; it cannot be transferred to another thread (map it there too). Throws
 * when the file cannot be opened or mapped, or is shorter than `bytes`; not on Windows.
 */
export function mapShared(path: string, bytes: number): ArrayBuffer;

/**
 * Doorbells (Linux only: a futex): the 32-bit counter at byte `offset` (a multiple of 4) of
 * `buffer`, a mapShared buffer that another process maps too. ring() increments it and wakes its
 * waiters, after the frame it announces is written; returns the new value.
 */
export function ring(buffer: ArrayBuffer, offset: number): number;

/**
 * Blocks this thread until the counter differs from `seen` or `timeoutMs` (at most 60000) has
 * passed, and returns its value (`seen` when nothing rang; a wake-up may also be spurious).
 */
export function waitRing(buffer: ArrayBuffer, offset: number, seen: number, timeoutMs: number): number;

/**
 * Calls `callback` on this thread's event loop after the counter changes (once for several rings
 * that come before it runs), from a thread of its own, until the returned function is called; it
 * does not keep the process alive.
 */
export function watchRing(buffer: ArrayBuffer, offset: number, callback: () => void): () => void;
