import * as tf from '@tensorflow/tfjs';
import { reluGrad } from './activationGradients.js';
import { RELU_GRAD, hasKernel } from './kernelNames.js';

/*
 * Dense and conv layers as one program each (product, bias and ReLU: tfjs's _FusedMatMul and
 * FusedConv2D kernels) instead of three. tfjs's own fused ops run unfused under a gradient tape
 * when there is an activation, and otherwise go through a custom gradient that computes every
 * input's gradient, wanted or not (D's weights in G's phase). So the layers run the kernels
 * directly and these gradients are registered for them: one lazy function per input, which the
 * tape calls only for inputs on the path to what is differentiated. Used where the backend
 * registers RELU_GRAD (its fused kernels' gradients need it to stay one kernel); elsewhere the
 * layers stay unfused.
 */

export type Activation = 'linear' | 'relu';

/** Whether the layers should run fused: the current backend registers RELU_GRAD. */
function useFusedLayers(): boolean {
  return hasKernel(RELU_GRAD);
}

export const activate = <T extends tf.Tensor>(y: T, activation: Activation): T => (activation === 'relu' ? tf.relu(y) : y);

/** x·kernel + bias, then the activation; one kernel where the backend fuses layers. */
export function denseLayer(x: tf.Tensor2D, kernel: tf.Tensor2D, bias: tf.Tensor, activation: Activation): tf.Tensor2D {
  if (!useFusedLayers()) return activate(tf.add(tf.matMul(x, kernel), bias), activation);
  const [n, k] = x.shape;
  const m = kernel.shape[1];
  // The kernel takes batches of matrices; the reshapes are views.
  const a = tf.reshape(x, [1, n, k]);
  const b = tf.reshape(kernel, [1, k, m]);
  const attrs = { transposeA: false, transposeB: false, activation };
  const y = tf.engine().runKernel(tf._FusedMatMul, { a, b, bias }, attrs) as tf.Tensor;
  return tf.reshape(y, [n, m]);
}

/** conv2d (NHWC, 'same' padding) + bias, then the activation; one kernel where the backend fuses layers. */
export function convLayer(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor, stride: number, activation: Activation): tf.Tensor4D {
  if (!useFusedLayers()) return activate(tf.add(tf.conv2d(x, filter, stride, 'same'), bias), activation);
  const attrs = { strides: stride, pad: 'same', dataFormat: 'NHWC', dilations: 1, activation };
  return tf.engine().runKernel(tf.FusedConv2D, { x, filter, bias }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/**
 * dy through the activation. Computed when the tape asks for the node's gradients, not inside
 * one input's function: the tape disposes what each of those makes but its result.
 */
function activationGrad(dy: tf.Tensor, y: tf.Tensor, activation: Activation): tf.Tensor {
  return activation === 'relu' ? reluGrad(dy, y) : dy;
}

function checkActivation(kernel: string, activation: string): asserts activation is Activation {
  if (activation !== 'linear' && activation !== 'relu') throw new Error(`ganfleet's ${kernel} gradient: activation ${activation} is not supported`);
}

/** The sum of g over all axes but the last, shaped like the bias. */
const biasGrad = (g: tf.Tensor, bias: tf.Tensor): tf.Tensor =>
  tf.reshape(
    tf.sum(
      g,
      g.shape.slice(0, -1).map((_, i) => i),
    ),
    bias.shape,
  );

/** For registerOpGradients (tfjs's gradient registry is global). */
export const fusedLayerGradients: tf.GradConfig[] = [
  {
    kernelName: tf._FusedMatMul,
    inputsToSave: ['a', 'b', 'bias'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [a, b, bias, y] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      const { transposeA, transposeB, activation } = attrs as unknown as { transposeA: boolean; transposeB: boolean; activation: string };
      checkActivation(tf._FusedMatMul, activation);
      if (transposeA || transposeB) throw new Error(`ganfleet's ${tf._FusedMatMul} gradient: transposed operands are not supported`);
      const g = activationGrad(dy as tf.Tensor, y, activation);
      return {
        a: () => tf.matMul(g, b, false, true),
        b: () => tf.matMul(a, g, true, false),
        bias: () => biasGrad(g, bias),
      };
    },
  },
  {
    kernelName: tf.FusedConv2D,
    inputsToSave: ['x', 'filter', 'bias'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter, bias, y] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor, tf.Tensor];
      const { strides, pad, dataFormat, dilations, dimRoundingMode, activation } = attrs as unknown as tf.Conv2DAttrs & { activation: string };
      checkActivation(tf.FusedConv2D, activation);
      if (dataFormat !== 'NHWC' || !(dilations === 1 || (Array.isArray(dilations) && dilations.every((d) => d === 1)))) {
        throw new Error(`ganfleet's ${tf.FusedConv2D} gradient: only NHWC and dilation 1 are supported`);
      }
      const g = activationGrad(dy as tf.Tensor, y, activation);
      const convPad = pad as 'same' | 'valid' | number;
      return {
        x: () => tf.conv2dTranspose(g as tf.Tensor4D, filter, x.shape, strides, convPad, dimRoundingMode),
        filter: () =>
          tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy: g }, {
            strides,
            pad,
            dataFormat,
            dimRoundingMode,
            filterShape: filter.shape,
          } as unknown as tf.NamedAttrMap) as tf.Tensor,
        bias: () => biasGrad(g, bias),
      };
    },
  },
];
