import * as tf from '@tensorflow/tfjs';
import { loadGeneratorModel } from '../model/index.js';
import { Rng } from '../data/index.js';
import { type EvalOptions, type EvalResult, Evaluator, type EvaluatorOptions } from './evaluator.js';

export interface EvaluateGeneratorOptions extends EvalOptions, EvaluatorOptions {
  /** Samples to draw (default 10 000). */
  n?: number;
  /** Noise seed (default 1). */
  seed?: number;
  /** Reused instead of creating (and disposing) one. */
  evaluator?: Evaluator;
}

/** Noise rows per generator call. */
const BATCH = 500;

/**
 * Draws n samples from a generator LayersModel (or the directory it was saved in: input [n, noise]
 * ~ N(0, 1), output n images in [-1, 1]) and evaluates them.
 */
export async function evaluateGenerator(generator: tf.LayersModel | string, opts: EvaluateGeneratorOptions = {}): Promise<EvalResult> {
  const model = typeof generator === 'string' ? await loadGeneratorModel(generator) : generator;
  try {
    const images = await sampleImages(model, opts.n ?? 10_000, opts.seed ?? 1);
    const evaluator = opts.evaluator ?? (await Evaluator.create(opts));
    try {
      return await evaluator.evaluate(images, opts.n ?? 10_000, opts);
    } finally {
      if (evaluator !== opts.evaluator) evaluator.dispose();
    }
  } finally {
    if (model !== generator) model.dispose();
  }
}

async function sampleImages(model: tf.LayersModel, n: number, seed: number): Promise<Float32Array> {
  const noiseDim = model.inputs[0]?.shape[1];
  const size = (model.outputs[0]?.shape.slice(1) ?? []).reduce<number>((a, b) => a * (b ?? 0), 1);
  if (!noiseDim || !size) throw new Error(`not a generator: input ${String(model.inputs[0]?.shape)}, output ${String(model.outputs[0]?.shape)}`);
  const rng = new Rng(seed);
  const images = new Float32Array(n * size);
  for (let start = 0; start < n; start += BATCH) {
    const rows = Math.min(BATCH, n - start);
    const noise = rng.fillNormal(new Float32Array(rows * noiseDim));
    const y = tf.tidy(() => model.predict(tf.tensor2d(noise, [rows, noiseDim])) as tf.Tensor);
    const values = await y.data();
    y.dispose();
    images.set(values as Float32Array, start * size);
  }
  return images;
}
