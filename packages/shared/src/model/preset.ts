import type * as tf from '@tensorflow/tfjs';
import type { Phase } from '../wire/index.js';

export type Init = { kind: 'truncatedNormal'; stddev: number } | { kind: 'zeros' } | { kind: 'ones' };

/** One parameter tensor of a preset. Order in `ModelPreset.params` is the wire and checkpoint order. */
export interface ParamSpec {
  name: string;
  shape: number[];
  /** The network it belongs to, trained in that phase by that network's own Adam. */
  network: Phase;
  init: Init;
  /** Batch-norm moving statistics are parameters the optimizer never touches. */
  trainable: boolean;
}

export type TensorMap = ReadonlyMap<string, tf.Tensor>;

/** Batch statistics of one batch-norm layer in a training-mode forward pass. */
export interface BatchNormStat {
  layer: string;
  /** [2C]: the per-channel means, then the (biased) variances. */
  moments: tf.Tensor1D;
}

export interface GeneratorOutput {
  /** NHWC images in [-1, 1]. */
  images: tf.Tensor4D;
  /** Empty for presets without batch norm. */
  stats: BatchNormStat[];
}

/**
 * A GAN architecture. Networks are pure functions of a parameter map so that
 * gradients, averaging and Adam can live outside TensorFlow.js variables;
 * `buildGeneratorModel` gives the same generator as a LayersModel for export.
 */
export interface ModelPreset {
  name: string;
  description: string;
  noiseDim: number;
  imageShape: readonly [number, number, number];
  params: readonly ParamSpec[];
  /** Adam settings used unless the user gives others (both networks). */
  optimizer: { learningRate: number; beta1: number; beta2: number };
  /** Batch per worker (per micro-batch) unless the user gives one. */
  batchSize: number;
  /** One-sided label smoothing unless the user gives one: D aims at 1 - s for real images. */
  labelSmoothing: number;
  /** Unless the user gives one: the fraction of the steps after which both learning rates fall linearly to 0 (1: constant). */
  lrDecayFrom: number;
  /** Unless the user gives one: the averaged generator's decay cap (0: none, the run's product is G's own weights). */
  emaDecay: number;
  /**
   * G's last bias before its tanh. A run starts it at atanh of the training data's mean pixel
   * (per pixel, or over all pixels for a single bias), so that G's first images are the data's
   * mean rather than flat grey, which D would learn to reject before G moves (see startFromData).
   */
  imageBias: string;
  /** Batch-norm layers: name -> parameter names of its moving mean and variance. */
  batchNorms: readonly { layer: string; movingMean: string; movingVariance: string }[];
  /** `training` uses batch statistics (and reports them); inference uses the moving ones. */
  generator(p: TensorMap, z: tf.Tensor2D, training: boolean): GeneratorOutput;
  /** Logits, shape [batch, 1]. */
  discriminator(p: TensorMap, x: tf.Tensor4D): tf.Tensor2D;
  /** The generator as tf.layers; weights are set by `generatorWeightNames` order. */
  buildGeneratorModel(): tf.LayersModel;
  /** Parameter names in the order of `buildGeneratorModel().getWeights()`. */
  generatorWeightNames: readonly string[];
}
