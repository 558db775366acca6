import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { loadGeneratorModel } from '../model/index.js';

/** The penultimate layer: its activations are the features FID compares. */
export const CLASSIFIER_FEATURE_LAYER = 'features';
export const CLASSIFIER_FEATURE_DIM = 64;
export const CLASSIFIER_CLASSES = 10;

/** The committed weights; src/eval and dist/eval both sit two levels below the package root. */
export const CLASSIFIER_DIR = fileURLToPath(new URL('../../assets/classifier/', import.meta.url));

/**
 * The evaluation CNN (about 114k parameters): two 5x5 conv + max-pool blocks, a 64-unit ReLU
 * layer (the features) and a softmax over the 10 digits. Inputs are 28x28x1 in [-1, 1].
 * Initialisers are seeded so `scripts/train-classifier.ts` reproduces the committed weights.
 */
export function buildClassifier(seed: number): tf.Sequential {
  const init = (i: number) => tf.initializers.glorotUniform({ seed: seed + i });
  return tf.sequential({
    name: 'ganfleet_mnist_classifier',
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 16, kernelSize: 5, padding: 'same', activation: 'relu', kernelInitializer: init(0) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 32, kernelSize: 5, padding: 'same', activation: 'relu', kernelInitializer: init(1) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: CLASSIFIER_FEATURE_DIM, activation: 'relu', kernelInitializer: init(2), name: CLASSIFIER_FEATURE_LAYER }),
      tf.layers.dense({ units: CLASSIFIER_CLASSES, activation: 'softmax', kernelInitializer: init(3), name: 'probabilities' }),
    ],
  });
}

/** Loads the committed classifier (or one saved the same way in `dir`). */
export async function loadClassifier(dir: string = CLASSIFIER_DIR): Promise<tf.LayersModel> {
  return loadGeneratorModel(dir);
}
