import * as tf from '@tensorflow/tfjs';
import { type KernelArgs, type Uniform, type WebGpuBackendLike, webgpuKernel } from './webgpuProgram.js';

/*
 * Per-channel reductions for our webgpu kernels: a tensor read as [rows, C], C its last axis, one
 * workgroup per channel. Stock tfjs reduces all axes but the last by transposing the channels to
 * the front and then reducing (two programs); this is one.
 */

/** WebGPU's default limit on workgroups along one dispatch dimension: one per channel. */
export const MAX_WORKGROUPS = 65535;

/** Most threads per channel: enough to keep a large channel's sum short per thread. */
const MAX_GROUP = 256;

/** Threads per channel for `rows` rows: a power of two, no more than the rows need (idle threads still wait at every barrier). */
export function groupSize(rows: number): number {
  let size = 8;
  while (size < MAX_GROUP && size < rows) size *= 2;
  return size;
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
 * Writes [results, C]: `body` sets `first` (and `second` when results is 2) for channel c from
 * its n rows, each of the workgroup's GROUP_SIZE threads taking every GROUP_SIZE-th row, with
 * groupSum to add up their parts.
 */
export class ChannelReduceProgram {
  /** rows and channels of the first input; a float (batch norm's epsilon, the log-loss's scale) and batch norm's relu flag. */
  static readonly uniforms = 'rows : i32, channels : i32, scalar : f32, relu : i32,';
  readonly uniforms = ChannelReduceProgram.uniforms;
  readonly outputShape: number[];
  readonly workgroupSize: [number, number, number];
  readonly dispatchLayout = { x: [0] };
  readonly dispatch: [number, number, number];
  readonly shaderKey: string;

  constructor(
    readonly variableNames: string[],
    x: tf.TensorInfo,
    private readonly results: 1 | 2,
    key: string,
    private readonly body: string,
  ) {
    const channels = x.shape[x.shape.length - 1] as number;
    const size = groupSize(tf.util.sizeFromShape(x.shape) / channels);
    this.workgroupSize = [size, 1, 1];
    this.shaderKey = `${key}_${size}`;
    this.outputShape = [results * channels];
    this.dispatch = [channels, 1, 1];
  }

  getUserCode(): string {
    // No early return: every thread must reach each barrier.
    return `
      ${reduceSnippet(this.workgroupSize[0])}
      fn main(index : i32) {
        let c = i32(workgroupId.x);
        let C = uniforms.channels;
        let n = uniforms.rows;
        ${this.body}
        if (localId.x == 0u) {
          setOutputAtIndex(c, first);
          ${this.results === 2 ? 'setOutputAtIndex(C + c, second);' : ''}
        }
      }
    `;
  }
}

/** The uniforms ChannelReduceProgram (and batch norm's elementwise programs) declare, for x read as [rows, C]. */
export function channelUniforms(x: tf.TensorInfo, scalar = 0, relu = false): Uniform[] {
  const channels = x.shape[x.shape.length - 1] as number;
  return [
    { type: 'int32', data: [tf.util.sizeFromShape(x.shape) / channels] },
    { type: 'int32', data: [channels] },
    { type: 'float32', data: [scalar] },
    { type: 'int32', data: [relu ? 1 : 0] },
  ];
}

const SUM_BODY = `
  var s = 0.0;
  for (var r = i32(localId.x); r < n; r = r + GROUP_SIZE) { s = s + x[r * C + c]; }
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
    const out = backend.runWebGPUProgram(new ChannelReduceProgram(['x'], x, 1, 'ganfleetChannelSum', SUM_BODY), [x], 'float32', channelUniforms(x));
    if (!keepDims) return out;
    const kept = webgpuKernel('Reshape')({ inputs: { x: out }, backend: args.backend, attrs: { shape: [...new Array<number>(rank - 1).fill(1), channels] } });
    backend.disposeData(out.dataId);
    return kept;
  };
}
