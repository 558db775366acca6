import * as tf from '@tensorflow/tfjs';
import { BN_EPSILON } from '../ops/index.js';
import { layersWeightOrder, batchNorm, batchNormSpecs, conv, convSpecs, deconv, dense, denseSpecs, truncNormal } from './layers.js';
import type { BatchNormStat, ModelPreset, ParamSpec } from './preset.js';

const init = truncNormal(0.02);
const zero = { kind: 'zeros' } as const;

const params: ParamSpec[] = [
  ...denseSpecs('g/dense1', 'G', 100, 1024, init, init),
  ...batchNormSpecs('g/bn1', 1024),
  ...denseSpecs('g/dense2', 'G', 1024, 7 * 7 * 64, init, init),
  ...batchNormSpecs('g/bn2', 7 * 7 * 64),
  // tf.conv2dTranspose filters are [h, w, outChannels, inChannels].
  ...convSpecs('g/deconv1', 'G', [5, 5, 32, 64], 32, init, init),
  ...batchNormSpecs('g/bn3', 32),
  ...convSpecs('g/deconv2', 'G', [5, 5, 16, 32], 16, init, init),
  ...batchNormSpecs('g/bn4', 16),
  ...convSpecs('g/conv_out', 'G', [1, 1, 16, 1], 1, init, init),
  ...convSpecs('d/conv1', 'D', [5, 5, 1, 32], 32, init, zero),
  ...convSpecs('d/conv2', 'D', [5, 5, 32, 64], 64, init, zero),
  ...denseSpecs('d/dense1', 'D', 7 * 7 * 64, 1024, init, zero),
  ...denseSpecs('d/dense2', 'D', 1024, 1, init, zero),
];

const bnLayers = ['g/bn1', 'g/bn2', 'g/bn3', 'g/bn4'];

/**
 * The reference GAN (junqiangchen/GAN `mnist_model.py`, described in docs/reference-model.md):
 * a DCGAN-like generator with batch norm and a two-conv discriminator with average pooling.
 */
export const convPreset: ModelPreset = {
  name: 'conv',
  description: 'Reference GAN of Goodfellow et al. as in junqiangchen/GAN (conv, batch norm, ~3.4 M + 3.3 M parameters)',
  noiseDim: 100,
  imageShape: [28, 28, 1],
  params,
  // The reference's learning rate with DCGAN's beta1: at 2e-4 the 1x1 output conv (16 inputs,
  // init 0.02) grows too slowly, since Adam moves a weight by about lr per step (docs/quality.md).
  optimizer: { learningRate: 5e-4, beta1: 0.5, beta2: 0.999 },
  // 64 images per step with `ganfleet train`'s two workers: at the reference's 128 its samples never left a few stroke shapes (docs/quality.md).
  batchSize: 32,
  // Measured on two seeds at 64 per step: without smoothing it learns faster (docs/quality.md).
  labelSmoothing: 0,
  // Measured on two seeds: G's own weights drew far better digits than their average (FID 72 and
  // 90 against 123 and 174 at the end of a decayed run), and the decay balanced the classes better
  // than constant rates (docs/quality.md).
  lrDecayFrom: 0.5,
  emaDecay: 0,
  imageBias: 'g/conv_out/bias',
  batchNorms: bnLayers.map((layer) => ({ layer, movingMean: `${layer}/moving_mean`, movingVariance: `${layer}/moving_variance` })),

  generator(p, z, training) {
    const stats: BatchNormStat[] = [];
    const h1 = batchNorm(p, 'g/bn1', dense(p, 'g/dense1', z), training, stats, 'relu');
    const h2 = batchNorm(p, 'g/bn2', dense(p, 'g/dense2', h1), training, stats, 'relu');
    const h2r = tf.reshape(h2, [-1, 7, 7, 64]) as tf.Tensor4D;
    const h3 = batchNorm(p, 'g/bn3', deconv(p, 'g/deconv1', h2r, 32, 2), training, stats, 'relu');
    const h4 = batchNorm(p, 'g/bn4', deconv(p, 'g/deconv2', h3, 16, 2), training, stats, 'relu');
    const images = tf.tanh(conv(p, 'g/conv_out', h4, 1));
    return { images, stats };
  },

  discriminator(p, x) {
    const h1 = tf.avgPool(conv(p, 'd/conv1', x, 1, 'relu'), 2, 2, 'valid');
    const h2 = tf.avgPool(conv(p, 'd/conv2', h1, 1, 'relu'), 2, 2, 'valid');
    const flat = tf.reshape(h2, [-1, 7 * 7 * 64]) as tf.Tensor2D;
    const h3 = dense(p, 'd/dense1', flat, 'relu');
    return dense(p, 'd/dense2', h3);
  },

  buildGeneratorModel() {
    const bn = (): tf.layers.Layer => tf.layers.batchNormalization({ epsilon: BN_EPSILON });
    return tf.sequential({
      name: 'ganfleet_conv_generator',
      layers: [
        tf.layers.dense({ inputShape: [100], units: 1024 }),
        bn(),
        tf.layers.reLU(),
        tf.layers.dense({ units: 7 * 7 * 64 }),
        bn(),
        tf.layers.reLU(),
        tf.layers.reshape({ targetShape: [7, 7, 64] }),
        tf.layers.conv2dTranspose({ filters: 32, kernelSize: 5, strides: 2, padding: 'same' }),
        bn(),
        tf.layers.reLU(),
        tf.layers.conv2dTranspose({ filters: 16, kernelSize: 5, strides: 2, padding: 'same' }),
        bn(),
        tf.layers.reLU(),
        tf.layers.conv2d({ filters: 1, kernelSize: 1, padding: 'same', activation: 'tanh' }),
      ],
    });
  },
  generatorWeightNames: layersWeightOrder(params),
};
