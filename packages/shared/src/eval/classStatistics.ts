/** Share of the samples a class needs (by the classifier's top prediction) to count as a mode hit. */
export const MODE_HIT_SHARE = 0.01;

/** What the classifier's predictions say about a set of samples. */
export interface ClassStatistics {
  /** Samples per class, by top prediction. */
  histogram: number[];
  /** Classes holding at least MODE_HIT_SHARE of the samples (a tenth of the uniform share). */
  modes: number;
  /** KL(class histogram || uniform) in nats: 0 for perfectly balanced classes, log(classes) for one class. */
  klUniform: number;
  /** Mean probability of each sample's top class. */
  meanConfidence: number;
  /** exp(E_x KL(p(y|x) || p(y))) over all samples as one split: 1 to `classes`. */
  inceptionScore: number;
}

/** Statistics of `n` rows of `classes` class probabilities, row-major. */
export function classStatistics(probs: ArrayLike<number>, n: number, classes: number): ClassStatistics {
  if (probs.length !== n * classes || n < 1) throw new Error(`classStatistics: ${probs.length} values are not ${n} rows of ${classes}`);
  const histogram = new Array<number>(classes).fill(0);
  const marginal = new Float64Array(classes);
  let confidence = 0;
  for (let r = 0; r < n; r++) {
    let top = 0;
    for (let c = 0; c < classes; c++) {
      const p = probs[r * classes + c] as number;
      marginal[c] = (marginal[c] as number) + p / n;
      if (p > (probs[r * classes + top] as number)) top = c;
    }
    histogram[top] = (histogram[top] as number) + 1;
    confidence += probs[r * classes + top] as number;
  }
  let klUniform = 0;
  for (const count of histogram) if (count > 0) klUniform += (count / n) * Math.log((count / n) * classes);
  let klSum = 0;
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < classes; c++) {
      const p = probs[r * classes + c] as number;
      // 0 log 0 = 0; a positive p implies a positive marginal.
      if (p > 0) klSum += p * Math.log(p / (marginal[c] as number));
    }
  }
  return {
    histogram,
    modes: histogram.filter((count) => count >= MODE_HIT_SHARE * n).length,
    klUniform,
    meanConfidence: confidence / n,
    inceptionScore: Math.exp(klSum / n),
  };
}
