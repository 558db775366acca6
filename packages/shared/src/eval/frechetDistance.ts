import type { GaussianStats } from './gaussianStats.js';
import { sqrtmPsd } from './sqrtmPsd.js';
import { symmetricEigen } from './symmetricEigen.js';

/**
 * Fréchet distance between two Gaussians: ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).
 * S1 S2 is not symmetric, but it is similar to the PSD matrix S1^(1/2) S2 S1^(1/2) (same
 * eigenvalues), so Tr((S1 S2)^(1/2)) is the sum of the square roots of that matrix's
 * eigenvalues; everything stays symmetric and real, in float64, even for singular covariances.
 */
export function frechetDistance(a: GaussianStats, b: GaussianStats): number {
  const dim = a.dim;
  if (b.dim !== dim) throw new Error(`frechetDistance: dimensions ${a.dim} and ${b.dim} differ`);
  let meanTerm = 0;
  let trace = 0;
  for (let i = 0; i < dim; i++) {
    meanTerm += ((a.mean[i] as number) - (b.mean[i] as number)) ** 2;
    trace += (a.cov[i * dim + i] as number) + (b.cov[i * dim + i] as number);
  }
  const r = sqrtmPsd(a.cov, dim);
  const m = multiply(multiply(r, b.cov, dim), r, dim);
  let rootTrace = 0;
  for (const l of symmetricEigen(m, dim).values) rootTrace += Math.sqrt(Math.max(l, 0));
  return meanTerm + trace - 2 * rootTrace;
}

function multiply(x: Float64Array, y: Float64Array, dim: number): Float64Array {
  const out = new Float64Array(dim * dim);
  for (let i = 0; i < dim; i++) {
    for (let k = 0; k < dim; k++) {
      const xik = x[i * dim + k] as number;
      if (xik === 0) continue;
      for (let j = 0; j < dim; j++) out[i * dim + j] = (out[i * dim + j] as number) + xik * (y[k * dim + j] as number);
    }
  }
  return out;
}
