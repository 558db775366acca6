import * as tf from '@tensorflow/tfjs';
import { ElementwiseProgram, type KernelArgs, type Uniform, type WebGpuBackendLike, webgpuKernel } from './program.js';

/*
 * Per-channel reductions for our webgpu kernels: a tensor read as [rows, C], C its last axis.
 * Stock tfjs reduces all axes but the last by transposing the channels to the front and then
 * reducing (two programs); this is one, with one workgroup per channel. Where that would leave a
 * GPU mostly idle (few channels, many rows: the conv model's 16-channel 28×28 layer has 802 816
 * rows at batch 1024) the rows are split into chunks, a workgroup per chunk and channel, and a
 * second program combines the chunks' results.
 */

/** WebGPU's default limit on workgroups along one dispatch dimension: one per channel. */
export const MAX_WORKGROUPS = 65535;

/** Most threads per channel: enough to keep a large channel's sum short per thread. */
const MAX_GROUP = 256;

/** Rows a chunk has at least: 8 per thread of the largest workgroup, so that each does real work. */
const MIN_CHUNK_ROWS = 8 * MAX_GROUP;

/** Workgroups a split reduction aims at: enough to fill a large GPU (an H100's 132 SMs hold 8 of 256 threads each). */
const TARGET_WORKGROUPS = 1024;

/** Threads per channel for `rows` rows: a power of two, no more than the rows need (idle threads still wait at every barrier). */
export function groupSize(rows: number): number {
  let size = 8;
  while (size < MAX_GROUP && size < rows) size *= 2;
  return size;
}

/**
 * How a reduction of `rows` rows over `channels` channels is split: `splits` chunks of `chunk`
 * rows (the last one possibly shorter, none empty); one chunk where the channels alone give
 * enough workgroups or the rows are too few to share.
 */
export function rowSplit(rows: number, channels: number): { splits: number; chunk: number } {
  const wanted = Math.max(1, Math.min(Math.ceil(rows / MIN_CHUNK_ROWS), Math.ceil(TARGET_WORKGROUPS / channels)));
  const chunk = Math.max(1, Math.ceil(rows / wanted));
  return { splits: Math.max(1, Math.ceil(rows / chunk)), chunk };
}

/**
 * A workgroup of `size` threads' tree reduction (every thread passes its value and gets the
 * total), and GROUP_SIZE for the bodies' loops.
 */
function reduceSnippet(size: number): string {
  return `
  const GROUP_SIZE : i32 = ${size};
  var<workgroup> partial : array<f32, ${size}>;
  fn groupSum(v : f32) -> f32 {
    partial[localId.x] = v;
    workgroupBarrier();
    for (var stride = ${size / 2}u; stride > 0u; stride = stride / 2u) {
      if (localId.x < stride) {
        partial[localId.x] = partial[localId.x] + partial[localId.x + stride];
      }
      workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
  }
`;
}

/**
 * How a split reduction's chunk results become the whole's: 'sum' adds them; 'moments' pools
 * per-chunk (mean, variance) pairs into the mean and variance of all rows.
 */
export type Combine = 'sum' | 'moments';

/** Chunk results [splits, results, C] → [results, C], one thread per output. */
const COMBINE_BODIES: Record<Combine, string> = {
  sum: `
    let k = index / C;
    let results = uniforms.size / C;
    var s = 0.0;
    for (var i = 0; i < splits; i = i + 1) { s = s + chunks[(i * results + k) * C + c]; }
    setOutputAtIndex(index, s);
  `,
  // Chan et al.'s pooling: the variance of all rows is the weighted mean of the chunks' variances
  // plus that of their means' squared distances to the overall mean.
  moments: `
    var mean = 0.0;
    for (var i = 0; i < splits; i = i + 1) {
      let rows = f32(min(uniforms.chunk, uniforms.rows - i * uniforms.chunk));
      mean = mean + rows * chunks[2 * i * C + c];
    }
    mean = mean / f32(uniforms.rows);
    if (index < C) {
      setOutputAtIndex(index, mean);
    } else {
      var q = 0.0;
      for (var i = 0; i < splits; i = i + 1) {
        let rows = f32(min(uniforms.chunk, uniforms.rows - i * uniforms.chunk));
        let d = chunks[2 * i * C + c] - mean;
        q = q + rows * (chunks[(2 * i + 1) * C + c] + d * d);
      }
      setOutputAtIndex(index, q / f32(uniforms.rows));
    }
  `,
};

/**
 * Writes [results, C] (per chunk: [splits, results, C]): `body` sets `first` (and `second` when
 * results is 2) for channel c from rows start to end (n of them), each of the workgroup's
 * GROUP_SIZE threads taking every GROUP_SIZE-th row, with groupSum to add up their parts. Run it
 * with runChannelProgram, which combines the chunks.
 */
export class ChannelReduceProgram {
  /**
   * Rows and channels of the first input; a float (batch norm's epsilon, the log-loss's scale);
   * batch norm's relu flag; the rows of a chunk.
   */
  static readonly uniforms = 'rows : i32, channels : i32, scalar : f32, relu : i32, chunk : i32,';
  readonly uniforms = ChannelReduceProgram.uniforms;
  readonly outputShape: number[];
  readonly workgroupSize: [number, number, number];
  readonly dispatchLayout = { x: [0] };
  readonly dispatch: [number, number, number];
  readonly shaderKey: string;
  readonly splits: number;
  private readonly channels: number;

  constructor(
    readonly variableNames: string[],
    x: tf.TensorInfo,
    private readonly results: 1 | 2,
    private readonly combine: Combine,
    key: string,
    private readonly body: string,
  ) {
    const channels = x.shape[x.shape.length - 1] as number;
    const { splits, chunk } = rowSplit(tf.util.sizeFromShape(x.shape) / channels, channels);
    const size = groupSize(chunk);
    this.splits = splits;
    this.channels = channels;
    this.workgroupSize = [size, 1, 1];
    this.shaderKey = `${key}_${size}`;
    this.outputShape = [splits * results * channels];
    this.dispatch = [channels, splits, 1];
  }

  getUserCode(): string {
    // No early return: every thread must reach each barrier.
    return `
      ${reduceSnippet(this.workgroupSize[0])}
      fn main(index : i32) {
        let c = i32(workgroupId.x);
        let C = uniforms.channels;
        let start = i32(workgroupId.y) * uniforms.chunk;
        let end = min(uniforms.rows, start + uniforms.chunk);
        let n = end - start;
        ${this.body}
        if (localId.x == 0u) {
          let out = i32(workgroupId.y) * ${this.results} * C + c;
          setOutputAtIndex(out, first);
          ${this.results === 2 ? 'setOutputAtIndex(out + C, second);' : ''}
        }
      }
    `;
  }

  /** The program that turns this one's chunk results into the whole's, for runChannelProgram. */
  combineProgram(): ElementwiseProgram {
    const body = `
      let C = uniforms.channels;
      let c = index % C;
      let splits = (uniforms.rows + uniforms.chunk - 1) / uniforms.chunk;
      ${COMBINE_BODIES[this.combine]}
    `;
    return new ElementwiseProgram(['chunks'], [this.results * this.channels], `ganfleetCombine_${this.combine}`, body, this.uniforms);
  }
}

/**
 * Runs `program` on `inputs` with uniforms from channelUniforms; a ChannelReduceProgram that split
 * its rows is followed by the program that combines its chunks' results.
 */
export function runChannelProgram(
  backend: WebGpuBackendLike,
  program: ChannelReduceProgram | ElementwiseProgram,
  inputs: tf.TensorInfo[],
  uniforms: Uniform[],
): tf.TensorInfo {
  const out = backend.runWebGPUProgram(program, inputs, 'float32', uniforms);
  if (!(program instanceof ChannelReduceProgram) || program.splits === 1) return out;
  try {
    return backend.runWebGPUProgram(program.combineProgram(), [out], 'float32', uniforms);
  } finally {
    backend.disposeData(out.dataId);
  }
}

/** The uniforms ChannelReduceProgram (and batch norm's elementwise programs) declare, for x read as [rows, C]. */
export function channelUniforms(x: tf.TensorInfo, scalar = 0, relu = false): Uniform[] {
  const channels = x.shape[x.shape.length - 1] as number;
  const rows = tf.util.sizeFromShape(x.shape) / channels;
  return [
    { type: 'int32', data: [rows] },
    { type: 'int32', data: [channels] },
    { type: 'float32', data: [scalar] },
    { type: 'int32', data: [relu ? 1 : 0] },
    { type: 'int32', data: [rowSplit(rows, channels).chunk] },
  ];
}

const SUM_BODY = `
  var s = 0.0;
  for (var r = start + i32(localId.x); r < end; r = r + GROUP_SIZE) { s = s + x[r * C + c]; }
  let first = groupSum(s);
`;

/**
 * Sum in one program where it reduces every axis but the last of a float32 tensor (what the
 * gradient of a bias add asks for, once per layer); any other sum goes to the stock kernel.
 */
export function channelSum(stock: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const rank = x.shape.length;
    const channels = x.shape[rank - 1] as number;
    const allButLast = rank >= 2 && axes.length === rank - 1 && axes.every((a, i) => a === i);
    if (x.dtype !== 'float32' || !allButLast || channels > MAX_WORKGROUPS || tf.util.sizeFromShape(x.shape) === 0) return stock(args);
    const backend = args.backend as unknown as WebGpuBackendLike;
    const out = runChannelProgram(backend, new ChannelReduceProgram(['x'], x, 1, 'sum', 'ganfleetChannelSum', SUM_BODY), [x], channelUniforms(x));
    if (!keepDims) return out;
    const kept = webgpuKernel('Reshape')({ inputs: { x: out }, backend: args.backend, attrs: { shape: [...new Array<number>(rank - 1).fill(1), channels] } });
    backend.disposeData(out.dataId);
    return kept;
  };
}
