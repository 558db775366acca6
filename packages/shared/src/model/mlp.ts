import * as tf from '@tensorflow/tfjs';
import { layersWeightOrder, dense, denseSpecs, truncNormal } from './layers.js';
import type { ModelPreset, ParamSpec } from './preset.js';

const ALPHA = 0.2;
const zero = { kind: 'zeros' } as const;
// Glorot-scaled normal init: 0.02 (the conv preset's) trains this small net too slowly.
const glorot = (fanIn: number, fanOut: number) => truncNormal(Math.sqrt(2 / (fanIn + fanOut)));

const sizesG = [100, 256, 512, 784];
const sizesD = [784, 512, 256, 1];

const params: ParamSpec[] = [
  ...sizesG.slice(1).flatMap((out, i) => denseSpecs(`g/dense${i + 1}`, 'G', sizesG[i] as number, out, glorot(sizesG[i] as number, out), zero)),
  ...sizesD.slice(1).flatMap((out, i) => denseSpecs(`d/dense${i + 1}`, 'D', sizesD[i] as number, out, glorot(sizesD[i] as number, out), zero)),
];

/** A small fully connected GAN (100-256-512-784 / 784-512-256-1, leaky ReLU) for fast runs and tests. */
export const mlpPreset: ModelPreset = {
  name: 'mlp',
  description: 'Small fully connected GAN (100-256-512-784 / 784-512-256-1, leaky ReLU 0.2) for fast runs and tests',
  noiseDim: 100,
  imageShape: [28, 28, 1],
  params,
  // At 2e-4 this small net still draws noise after 1000 steps; 1e-3 draws digits (docs/quality.md).
  optimizer: { learningRate: 1e-3, beta1: 0.5, beta2: 0.999 },
  batchSize: 64,
  // Salimans et al. 2016; measured in docs/quality.md.
  labelSmoothing: 0.1,
  // The main command's measurements: constant rates, the average over the last half of the run (docs/quality.md).
  lrDecayFrom: 1,
  emaDecay: 0.9999,
  imageBias: 'g/dense3/bias',
  batchNorms: [],

  generator(p, z) {
    const h1 = tf.leakyRelu(dense(p, 'g/dense1', z), ALPHA);
    const h2 = tf.leakyRelu(dense(p, 'g/dense2', h1), ALPHA);
    const out = tf.tanh(dense(p, 'g/dense3', h2));
    return { images: tf.reshape(out, [-1, 28, 28, 1]) as tf.Tensor4D, stats: [] };
  },

  discriminator(p, x) {
    const flat = tf.reshape(x, [-1, 784]) as tf.Tensor2D;
    const h1 = tf.leakyRelu(dense(p, 'd/dense1', flat), ALPHA);
    const h2 = tf.leakyRelu(dense(p, 'd/dense2', h1), ALPHA);
    return dense(p, 'd/dense3', h2);
  },

  buildGeneratorModel() {
    return tf.sequential({
      name: 'ganfleet_mlp_generator',
      layers: [
        tf.layers.dense({ inputShape: [100], units: 256 }),
        tf.layers.leakyReLU({ alpha: ALPHA }),
        tf.layers.dense({ units: 512 }),
        tf.layers.leakyReLU({ alpha: ALPHA }),
        tf.layers.dense({ units: 784, activation: 'tanh' }),
        tf.layers.reshape({ targetShape: [28, 28, 1] }),
      ],
    });
  },
  generatorWeightNames: layersWeightOrder(params),
};
