import * as tf from '@tensorflow/tfjs';
import { LOG_LOSS, LOG_LOSS_GRAD } from '../../ops/index.js';
import { ChannelReduceProgram, channelUniforms, runChannelProgram } from './channelReduce.js';
import { ElementwiseProgram, type KernelArgs, type WebGpuBackendLike, webgpuKernel } from './program.js';

/*
 * The GAN's log-loss from logits on 'webgpu' in one program forwards and one backwards, where
 * stock ops take five and four (softplus, multiply, subtract, mean, scale; sigmoid, subtract,
 * divide, multiply): Σ (softplus(x) - y·x)·scale, and its gradient (σ(x) - y)·dy·scale, for logits
 * x and 0/1 labels y of one shape.
 */

/** Softplus as max(v, 0) + log(1 + e^-|v|), which neither overflows nor loses small values. */
const LOSS_BODY = `
  var s = 0.0;
  for (var r = start + i32(localId.x); r < end; r = r + GROUP_SIZE) {
    let v = x[r];
    s = s + max(v, 0.0) + log(1.0 + exp(-abs(v))) - labels[r] * v;
  }
  let first = groupSum(s) * uniforms.scalar;
`;

/** out[i] = (σ(x[i]) - y[i])·dy·scale, σ written so that e^v never overflows. */
const GRAD_BODY = `
  let v = x[index];
  let e = exp(-abs(v));
  let sigmoid = select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
  setOutputAtIndex(index, (sigmoid - labels[index]) * dy[0] * uniforms.scalar);
`;

function run(args: KernelArgs, program: ChannelReduceProgram | ElementwiseProgram, inputs: tf.TensorInfo[]): tf.TensorInfo {
  const { scale } = args.attrs as { scale: number };
  return runChannelProgram(args.backend as unknown as WebGpuBackendLike, program, inputs, channelUniforms(inputs[0] as tf.TensorInfo, scale));
}

/** For useWebGpuKernels to register. Inputs: logits x, labels (and dy, a scalar); attribute: scale. */
export const logLossKernelConfigs: tf.KernelConfig[] = [
  {
    kernelName: LOG_LOSS,
    backendName: 'webgpu',
    kernelFunc: (args) => {
      const { x, labels } = args.inputs as { x: tf.TensorInfo; labels: tf.TensorInfo };
      // Read as [n, 1]: one channel.
      const flat = { ...x, shape: [tf.util.sizeFromShape(x.shape), 1] };
      const sum = run(args, new ChannelReduceProgram(['x', 'labels'], flat, 1, 'sum', 'ganfleetLogLoss', LOSS_BODY), [flat, labels]);
      const scalar = webgpuKernel('Reshape')({ inputs: { x: sum }, backend: args.backend, attrs: { shape: [] } }) as tf.TensorInfo;
      (args.backend as unknown as WebGpuBackendLike).disposeData(sum.dataId);
      return scalar;
    },
  },
  {
    kernelName: LOG_LOSS_GRAD,
    backendName: 'webgpu',
    kernelFunc: (args) => {
      const { x, labels, dy } = args.inputs as { x: tf.TensorInfo; labels: tf.TensorInfo; dy: tf.TensorInfo };
      return run(args, new ElementwiseProgram(['x', 'labels', 'dy'], x.shape, 'ganfleetLogLossGrad', GRAD_BODY, ChannelReduceProgram.uniforms), [
        x,
        labels,
        dy,
      ]);
    },
  },
];
