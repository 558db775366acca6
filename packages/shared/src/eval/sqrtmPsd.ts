import { symmetricEigen } from './symmetricEigen.js';

/**
 * Principal square root of a symmetric positive semi-definite matrix (row-major dim x dim):
 * V diag(sqrt(max(l, 0))) V^T. Eigenvalues that rounding pushed slightly below zero count as 0.
 */
export function sqrtmPsd(s: ArrayLike<number>, dim: number): Float64Array {
  const { values, vectors } = symmetricEigen(s, dim);
  const roots = values.map((l) => Math.sqrt(Math.max(l, 0)));
  const out = new Float64Array(dim * dim);
  for (let i = 0; i < dim; i++) {
    for (let j = i; j < dim; j++) {
      let sum = 0;
      for (let k = 0; k < dim; k++) sum += (vectors[i * dim + k] as number) * (roots[k] as number) * (vectors[j * dim + k] as number);
      out[i * dim + j] = sum;
      out[j * dim + i] = sum;
    }
  }
  return out;
}
