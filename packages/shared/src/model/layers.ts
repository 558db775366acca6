import * as tf from '@tensorflow/tfjs';
import { type Activation, BN_EPSILON, activate, batchNormTraining, convLayer, denseLayer } from '../ops/index.js';
import type { BatchNormStat, Init, ParamSpec, TensorMap } from './preset.js';

/** Small building blocks shared by the presets. */

export function param(p: TensorMap, name: string): tf.Tensor {
  const t = p.get(name);
  if (!t) throw new Error(`missing parameter ${name}`);
  return t;
}

export const truncNormal = (stddev: number): Init => ({ kind: 'truncatedNormal', stddev });

export function denseSpecs(prefix: string, network: 'G' | 'D', inDim: number, outDim: number, init: Init, biasInit: Init): ParamSpec[] {
  return [
    { name: `${prefix}/kernel`, shape: [inDim, outDim], network, init, trainable: true },
    { name: `${prefix}/bias`, shape: [outDim], network, init: biasInit, trainable: true },
  ];
}

export function convSpecs(prefix: string, network: 'G' | 'D', kernelShape: number[], biasSize: number, init: Init, biasInit: Init): ParamSpec[] {
  return [
    { name: `${prefix}/kernel`, shape: kernelShape, network, init, trainable: true },
    { name: `${prefix}/bias`, shape: [biasSize], network, init: biasInit, trainable: true },
  ];
}

/** gamma, beta, moving mean, moving variance: the Keras BatchNormalization weight order. */
export function batchNormSpecs(prefix: string, size: number): ParamSpec[] {
  return [
    { name: `${prefix}/gamma`, shape: [size], network: 'G', init: { kind: 'ones' }, trainable: true },
    { name: `${prefix}/beta`, shape: [size], network: 'G', init: { kind: 'zeros' }, trainable: true },
    { name: `${prefix}/moving_mean`, shape: [size], network: 'G', init: { kind: 'zeros' }, trainable: false },
    { name: `${prefix}/moving_variance`, shape: [size], network: 'G', init: { kind: 'ones' }, trainable: false },
  ];
}

/** x·kernel + bias, then the activation. */
export function dense(p: TensorMap, prefix: string, x: tf.Tensor2D, activation: Activation = 'linear'): tf.Tensor2D {
  const kernel = param(p, `${prefix}/kernel`) as tf.Tensor2D;
  return denseLayer(x, kernel, param(p, `${prefix}/bias`), activation);
}

/** Transposed convolution, 'same' padding, + bias. */
export function deconv(p: TensorMap, prefix: string, x: tf.Tensor4D, outChannels: number, stride: number): tf.Tensor4D {
  const [b, h, w] = x.shape;
  const filter = param(p, `${prefix}/kernel`) as tf.Tensor4D;
  const y = tf.conv2dTranspose(x, filter, [b, h * stride, w * stride, outChannels], stride, 'same');
  return tf.add(y, param(p, `${prefix}/bias`));
}

/** Convolution, 'same' padding, + bias, then the activation. */
export function conv(p: TensorMap, prefix: string, x: tf.Tensor4D, stride: number, activation: Activation = 'linear'): tf.Tensor4D {
  const filter = param(p, `${prefix}/kernel`) as tf.Tensor4D;
  return convLayer(x, filter, param(p, `${prefix}/bias`), stride, activation);
}

/**
 * Batch norm over all axes but the last, then the activation. Training mode normalises with the
 * batch's own statistics and records them in `stats` so the coordinator can form inference
 * statistics; inference mode uses the moving statistics.
 */
export function batchNorm<T extends tf.Tensor>(
  p: TensorMap,
  prefix: string,
  x: T,
  training: boolean,
  stats: BatchNormStat[],
  activation: Activation = 'linear',
): T {
  const gamma = param(p, `${prefix}/gamma`);
  const beta = param(p, `${prefix}/beta`);
  if (training) return batchNormTraining(x, gamma, beta, activation === 'relu', (moments) => stats.push({ layer: prefix, moments }));
  return activate(tf.batchNorm(x, param(p, `${prefix}/moving_mean`), param(p, `${prefix}/moving_variance`), beta, gamma, BN_EPSILON) as T, activation);
}

/** tf.LayersModel.getWeights() lists all trainable weights first, then the non-trainable ones (moving statistics). */
export function layersWeightOrder(params: readonly ParamSpec[]): string[] {
  const g = params.filter((s) => s.network === 'G');
  return [...g.filter((s) => s.trainable), ...g.filter((s) => !s.trainable)].map((s) => s.name);
}
