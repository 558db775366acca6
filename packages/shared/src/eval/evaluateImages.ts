import { type EvalOptions, type EvalResult, Evaluator, type EvaluatorOptions } from './evaluator.js';

/** One-off evaluation of `n` images in [-1, 1]; to evaluate repeatedly, keep an Evaluator instead. */
export async function evaluateImages(images: Float32Array, n: number, opts: EvalOptions & EvaluatorOptions = {}): Promise<EvalResult> {
  const evaluator = await Evaluator.create(opts);
  try {
    return await evaluator.evaluate(images, n, opts);
  } finally {
    evaluator.dispose();
  }
}
