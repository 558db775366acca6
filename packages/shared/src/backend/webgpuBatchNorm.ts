import * as tf from '@tensorflow/tfjs';
import type { KernelArgs, Uniform, WebGpuBackendLike } from './webgpuProgram.js';

/*
 * Training-mode batch norm, optionally followed by a ReLU, as four kernels of our own on 'webgpu':
 * 2 dispatches forwards and 4 backwards where the same maths in stock ops takes 6 and 15. Every
 * tensor is read as [rows, C], C its last axis; statistics travel as one [2C] tensor, the means
 * then the (biased) variances. Attributes: epsilon, and relu (whether y = max(0, γ·x̂ + β); the
 * backward kernels then recompute y to mask dy, which saves ReLU's own two kernels).
 */

export const BN_MOMENTS = 'GanfleetBatchNormMoments';
export const BN_APPLY = 'GanfleetBatchNormApply';
export const BN_GRAD_SUMS = 'GanfleetBatchNormGradSums';
export const BN_GRAD_INPUT = 'GanfleetBatchNormGradInput';

/** Threads per channel in the reductions (one workgroup per channel). */
const GROUP = 256;

/** A workgroup's tree reduction: every thread passes its value and gets the total. */
const REDUCE = `
  var<workgroup> partial : array<f32, ${GROUP}>;
  fn groupSum(v : f32) -> f32 {
    partial[localId.x] = v;
    workgroupBarrier();
    for (var stride = ${GROUP / 2}u; stride > 0u; stride = stride / 2u) {
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

/** One workgroup per channel, writing [2, C]; `body` sets `first` and `second` from x (and dy). */
class ChannelReduceProgram {
  readonly outputShape: number[];
  readonly workgroupSize: [number, number, number] = [GROUP, 1, 1];
  readonly dispatchLayout = { x: [0] };
  readonly dispatch: [number, number, number];
  readonly uniforms = 'rows : i32, channels : i32, eps : f32, relu : i32,';

  constructor(
    readonly variableNames: string[],
    channels: number,
    readonly shaderKey: string,
    private readonly body: string,
  ) {
    this.outputShape = [2 * channels];
    this.dispatch = [channels, 1, 1];
  }

  getUserCode(): string {
    // No early return: every thread must reach each barrier.
    return `
      ${REDUCE}
      fn main(index : i32) {
        let c = i32(workgroupId.x);
        let C = uniforms.channels;
        let n = uniforms.rows;
        ${this.body}
        if (localId.x == 0u) {
          setOutputAtIndex(c, first);
          setOutputAtIndex(C + c, second);
        }
      }
    `;
  }
}

/** Mean, then the mean squared deviation from it (two passes: no cancellation). */
const MOMENTS_BODY = `
  var s = 0.0;
  for (var r = i32(localId.x); r < n; r = r + ${GROUP}) { s = s + x[r * C + c]; }
  let first = groupSum(s) / f32(n);
  var q = 0.0;
  for (var r = i32(localId.x); r < n; r = r + ${GROUP}) {
    let d = x[r * C + c] - first;
    q = q + d * d;
  }
  let second = groupSum(q) / f32(n);
`;

/** dβ = Σ g and dγ = Σ g·x̂, x̂ = (x - mean)·invStd, g = dy where the ReLU (if any) passed y. */
const GRAD_SUMS_BODY = `
  let mean = moments[c];
  let invStd = inverseSqrt(moments[C + c] + uniforms.eps);
  var s = 0.0;
  var t = 0.0;
  for (var r = i32(localId.x); r < n; r = r + ${GROUP}) {
    let xHat = (x[r * C + c] - mean) * invStd;
    let g = select(dy[r * C + c], 0.0, uniforms.relu == 1 && xHat * gamma[c] + beta[c] <= 0.0);
    s = s + g;
    t = t + g * xHat;
  }
  let first = groupSum(s);
  let second = groupSum(t);
`;

/** One thread per element of x. */
class ElementwiseProgram {
  readonly outputShape: number[];
  readonly workgroupSize: [number, number, number] = [128, 1, 1];
  readonly dispatchLayout: { x: number[] };
  readonly dispatch: [number, number, number];
  readonly size = true;
  readonly uniforms = 'rows : i32, channels : i32, eps : f32, relu : i32,';

  constructor(
    readonly variableNames: string[],
    shape: number[],
    readonly shaderKey: string,
    private readonly expression: string,
  ) {
    this.outputShape = shape;
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    const size = shape.reduce((a, b) => a * b, 1);
    this.dispatch = [Math.ceil(size / this.workgroupSize[0]), 1, 1];
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index >= uniforms.size) { return; }
        let C = uniforms.channels;
        let c = index % C;
        let xHat = (x[index] - moments[c]) * inverseSqrt(moments[C + c] + uniforms.eps);
        let y = xHat * gamma[c] + beta[c];
        let passed = uniforms.relu == 0 || y > 0.0;
        setOutputAtIndex(index, ${this.expression});
      }
    `;
  }
}

function run(args: KernelArgs, program: object, inputs: tf.TensorInfo[]): tf.TensorInfo {
  const x = inputs[0] as tf.TensorInfo;
  const channels = x.shape[x.shape.length - 1] as number;
  const { epsilon, relu } = args.attrs as { epsilon: number; relu: boolean };
  const uniforms: Uniform[] = [
    { type: 'int32', data: [tf.util.sizeFromShape(x.shape) / channels] },
    { type: 'int32', data: [channels] },
    { type: 'float32', data: [epsilon] },
    { type: 'int32', data: [relu ? 1 : 0] },
  ];
  return (args.backend as unknown as WebGpuBackendLike).runWebGPUProgram(program, inputs, 'float32', uniforms);
}

type Inputs = Record<string, tf.TensorInfo>;
const channelsOf = (t: tf.TensorInfo): number => t.shape[t.shape.length - 1] as number;

function config(kernelName: string, kernelFunc: tf.KernelFunc): tf.KernelConfig {
  return { kernelName, backendName: 'webgpu', kernelFunc };
}

/** The four kernels, for useWebGpuKernels to register. */
export const batchNormKernelConfigs: tf.KernelConfig[] = [
  config(BN_MOMENTS, (args) => {
    const { x } = args.inputs as Inputs as { x: tf.TensorInfo };
    return run(args, new ChannelReduceProgram(['x'], channelsOf(x), 'ganfleetBnMoments', MOMENTS_BODY), [x]);
  }),
  config(BN_APPLY, (args) => {
    const { x, moments, gamma, beta } = args.inputs as Inputs as { x: tf.TensorInfo; moments: tf.TensorInfo; gamma: tf.TensorInfo; beta: tf.TensorInfo };
    const program = new ElementwiseProgram(['x', 'moments', 'gamma', 'beta'], x.shape, 'ganfleetBnApply', 'select(0.0, y, passed)');
    return run(args, program, [x, moments, gamma, beta]);
  }),
  config(BN_GRAD_SUMS, (args) => {
    const { x, dy, moments, gamma, beta } = args.inputs as Inputs as {
      x: tf.TensorInfo;
      dy: tf.TensorInfo;
      moments: tf.TensorInfo;
      gamma: tf.TensorInfo;
      beta: tf.TensorInfo;
    };
    const program = new ChannelReduceProgram(['x', 'dy', 'moments', 'gamma', 'beta'], channelsOf(x), 'ganfleetBnGradSums', GRAD_SUMS_BODY);
    return run(args, program, [x, dy, moments, gamma, beta]);
  }),
  config(BN_GRAD_INPUT, (args) => {
    const { x, dy, moments, gamma, beta, sums } = args.inputs as Inputs as {
      x: tf.TensorInfo;
      dy: tf.TensorInfo;
      moments: tf.TensorInfo;
      gamma: tf.TensorInfo;
      beta: tf.TensorInfo;
      sums: tf.TensorInfo;
    };
    // dx = γ·invStd·(g - dβ/n - x̂·dγ/n), g = dy where the ReLU passed y
    const expression = `gamma[c] * inverseSqrt(moments[C + c] + uniforms.eps) * (select(0.0, dy[index], passed) - (sums[c] + xHat * sums[C + c]) / f32(uniforms.rows))`;
    const program = new ElementwiseProgram(['x', 'dy', 'moments', 'gamma', 'beta', 'sums'], x.shape, 'ganfleetBnGradInput', expression);
    return run(args, program, [x, dy, moments, gamma, beta, sums]);
  }),
];

/** Whether the current backend has these kernels (webgpu with ganfleet's kernel set). */
export function hasBatchNormKernels(): boolean {
  return tf.getKernel(BN_MOMENTS, tf.getBackend()) !== undefined;
}
