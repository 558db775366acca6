import * as tf from '@tensorflow/tfjs';
import { CLASSIFIER_FEATURE_LAYER } from './classifier.js';

export interface ClassifierOutputs {
  /** n rows of the feature layer's activations. */
  features: Float32Array;
  featureDim: number;
  /** n rows of class probabilities. */
  probs: Float32Array;
  classes: number;
}

/** Images per forward pass: bounds the activations held at once (about 20 MB). */
const BATCH = 500;

/** Feature-layer activations and class probabilities for `n` 28x28 images in [-1, 1], row-major. */
export async function classifierOutputs(classifier: tf.LayersModel, images: Float32Array, n: number): Promise<ClassifierOutputs> {
  const [, h, w, c] = classifier.inputs[0]?.shape ?? [];
  const size = (h ?? 0) * (w ?? 0) * (c ?? 0);
  if (size === 0 || images.length !== n * size) throw new Error(`classifier: ${images.length} values are not ${n} images of ${h}x${w}x${c}`);
  // A view on the same layers (no new weights) that also exposes the penultimate activations.
  const both = tf.model({
    inputs: classifier.inputs,
    outputs: [classifier.getLayer(CLASSIFIER_FEATURE_LAYER).output as tf.SymbolicTensor, ...classifier.outputs],
  });
  const featureDim = both.outputs[0]?.shape[1] ?? 0;
  const classes = both.outputs[1]?.shape[1] ?? 0;
  const features = new Float32Array(n * featureDim);
  const probs = new Float32Array(n * classes);
  for (let start = 0; start < n; start += BATCH) {
    const rows = Math.min(BATCH, n - start);
    const outs = tf.tidy(() => both.predict(tf.tensor4d(images.subarray(start * size, (start + rows) * size), [rows, h ?? 0, w ?? 0, c ?? 0])) as tf.Tensor[]);
    const [f, p] = await Promise.all(outs.map((t) => t.data()));
    tf.dispose(outs);
    features.set(f as Float32Array, start * featureDim);
    probs.set(p as Float32Array, start * classes);
  }
  return { features, featureDim, probs, classes };
}
