import * as tf from '@tensorflow/tfjs';
import { BN_APPLY, BN_GRAD_INPUT, BN_GRAD_SUMS, BN_MOMENTS } from '../../ops/index.js';
import { ChannelReduceProgram, channelUniforms, runChannelProgram } from './channelReduce.js';
import { ElementwiseProgram, type KernelArgs, type WebGpuBackendLike } from './program.js';

/*
 * Training-mode batch norm, optionally followed by a ReLU, as four kernels of our own on 'webgpu':
 * 2 dispatches forwards and 4 backwards where the same maths in stock ops takes 6 and 15. Every
 * tensor is read as [rows, C], C its last axis; statistics travel as one [2C] tensor, the means
 * then the (biased) variances. Attributes: epsilon, and relu (whether y = max(0, γ·x̂ + β); the
 * backward kernels then recompute y to mask dy, which saves ReLU's own two kernels).
 */

/** Mean, then the mean squared deviation from it (two passes: no cancellation), of the chunk's rows. */
const MOMENTS_BODY = `
  var s = 0.0;
  for (var r = start + i32(localId.x); r < end; r = r + GROUP_SIZE) { s = s + x[r * C + c]; }
  let first = groupSum(s) / f32(n);
  var q = 0.0;
  for (var r = start + i32(localId.x); r < end; r = r + GROUP_SIZE) {
    let d = x[r * C + c] - first;
    q = q + d * d;
  }
  let second = groupSum(q) / f32(n);
`;

/** dβ = Σ g and dγ = Σ g·x̂, x̂ = (x - mean)·invStd, g = dy where the ReLU (if any) passed y. */
const GRAD_SUMS_BODY = `
  let mean = moments[c];
  let invStd = inverseSqrt(moments[C + c] + uniforms.scalar);
  var s = 0.0;
  var t = 0.0;
  for (var r = start + i32(localId.x); r < end; r = r + GROUP_SIZE) {
    let xHat = (x[r * C + c] - mean) * invStd;
    let g = select(dy[r * C + c], 0.0, uniforms.relu == 1 && xHat * gamma[c] + beta[c] <= 0.0);
    s = s + g;
    t = t + g * xHat;
  }
  let first = groupSum(s);
  let second = groupSum(t);
`;

/** Batch norm's elementwise programs: x̂, y and whether the ReLU passed y, then `expression` for the output. */
function elementwise(names: string[], x: tf.TensorInfo, key: string, expression: string): ElementwiseProgram {
  const body = `
    let C = uniforms.channels;
    let c = index % C;
    let xHat = (x[index] - moments[c]) * inverseSqrt(moments[C + c] + uniforms.scalar);
    let y = xHat * gamma[c] + beta[c];
    let passed = uniforms.relu == 0 || y > 0.0;
    setOutputAtIndex(index, ${expression});
  `;
  return new ElementwiseProgram(names, x.shape, key, body, ChannelReduceProgram.uniforms);
}

/**
 * A kernel whose inputs, in this order, are also its program's variable names; `program` builds
 * the program from them and the first input.
 */
function kernel(
  kernelName: string,
  names: string[],
  program: (names: string[], x: tf.TensorInfo) => ChannelReduceProgram | ElementwiseProgram,
): tf.KernelConfig {
  const kernelFunc = (args: KernelArgs): tf.TensorInfo => {
    const inputs = names.map((n) => {
      const t = (args.inputs as Record<string, tf.TensorInfo | undefined>)[n];
      if (!t) throw new Error(`${kernelName}: missing input ${n}`);
      return t;
    });
    const x = inputs[0] as tf.TensorInfo;
    const { epsilon, relu } = args.attrs as { epsilon: number; relu: boolean };
    return runChannelProgram(args.backend as unknown as WebGpuBackendLike, program(names, x), inputs, channelUniforms(x, epsilon, relu));
  };
  return { kernelName, backendName: 'webgpu', kernelFunc };
}

/** dx = γ·invStd·(g - dβ/n - x̂·dγ/n), g = dy where the ReLU passed y. */
const GRAD_INPUT = `gamma[c] * inverseSqrt(moments[C + c] + uniforms.scalar) * (select(0.0, dy[index], passed) - (sums[c] + xHat * sums[C + c]) / f32(uniforms.rows))`;

/** The four kernels, for useWebGpuKernels to register. */
export const batchNormKernelConfigs: tf.KernelConfig[] = [
  kernel(BN_MOMENTS, ['x'], (names, x) => new ChannelReduceProgram(names, x, 2, 'moments', 'ganfleetBnMoments', MOMENTS_BODY)),
  kernel(BN_APPLY, ['x', 'moments', 'gamma', 'beta'], (names, x) => elementwise(names, x, 'ganfleetBnApply', 'select(0.0, y, passed)')),
  kernel(
    BN_GRAD_SUMS,
    ['x', 'dy', 'moments', 'gamma', 'beta'],
    (names, x) => new ChannelReduceProgram(names, x, 2, 'sum', 'ganfleetBnGradSums', GRAD_SUMS_BODY),
  ),
  kernel(BN_GRAD_INPUT, ['x', 'dy', 'moments', 'gamma', 'beta', 'sums'], (names, x) => elementwise(names, x, 'ganfleetBnGradInput', GRAD_INPUT)),
];
