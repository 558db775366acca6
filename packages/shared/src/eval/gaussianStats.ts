/** Mean and covariance of a set of feature vectors, in float64. */
export interface GaussianStats {
  n: number;
  dim: number;
  mean: Float64Array;
  /** Row-major dim x dim, unbiased (divides by n - 1, as numpy.cov and pytorch-fid do). */
  cov: Float64Array;
}

/** Statistics of `n` rows of `dim` features, row-major. */
export function gaussianStats(features: ArrayLike<number>, n: number, dim: number): GaussianStats {
  if (features.length !== n * dim) throw new Error(`gaussianStats: ${features.length} values are not ${n} rows of ${dim}`);
  if (n < 2) throw new Error('gaussianStats: a covariance needs at least 2 rows');
  const mean = new Float64Array(dim);
  for (let r = 0; r < n; r++) for (let j = 0; j < dim; j++) mean[j] = (mean[j] as number) + (features[r * dim + j] as number);
  for (let j = 0; j < dim; j++) mean[j] = (mean[j] as number) / n;
  const cov = new Float64Array(dim * dim);
  const centred = new Float64Array(dim);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < dim; j++) centred[j] = (features[r * dim + j] as number) - (mean[j] as number);
    for (let i = 0; i < dim; i++) {
      const ci = centred[i] as number;
      if (ci === 0) continue;
      for (let j = i; j < dim; j++) cov[i * dim + j] = (cov[i * dim + j] as number) + ci * (centred[j] as number);
    }
  }
  for (let i = 0; i < dim; i++) {
    for (let j = i; j < dim; j++) {
      const c = (cov[i * dim + j] as number) / (n - 1);
      cov[i * dim + j] = c;
      cov[j * dim + i] = c;
    }
  }
  return { n, dim, mean, cov };
}
