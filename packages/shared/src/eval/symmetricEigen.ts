/** Eigen-decomposition of a real symmetric matrix: S = V diag(values) V^T. */
export interface SymmetricEigen {
  /** Unsorted eigenvalues. */
  values: Float64Array;
  /** Row-major dim x dim; column j is the unit eigenvector of values[j]. */
  vectors: Float64Array;
}

/**
 * Cyclic Jacobi rotations in float64 (Golub & Van Loan 8.5): slower than QR methods but simple,
 * unconditionally stable and accurate for the small (<= a few hundred) covariance matrices here,
 * also when they are singular. `s` is row-major dim x dim and only its symmetric part is used.
 */
export function symmetricEigen(s: ArrayLike<number>, dim: number): SymmetricEigen {
  if (s.length !== dim * dim) throw new Error(`symmetricEigen: ${s.length} values do not form a ${dim}x${dim} matrix`);
  const a = new Float64Array(dim * dim);
  for (let i = 0; i < dim; i++) for (let j = 0; j < dim; j++) a[i * dim + j] = 0.5 * ((s[i * dim + j] as number) + (s[j * dim + i] as number));
  const v = new Float64Array(dim * dim);
  for (let i = 0; i < dim; i++) v[i * dim + i] = 1;
  const at = (i: number, j: number): number => a[i * dim + j] as number;

  let total = 0;
  for (let i = 0; i < dim * dim; i++) total += (a[i] as number) ** 2;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < dim; p++) for (let q = p + 1; q < dim; q++) off += at(p, q) ** 2;
    // Off-diagonal mass negligible against the whole matrix: the diagonal holds the eigenvalues.
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < dim; p++) {
      for (let q = p + 1; q < dim; q++) {
        const apq = at(p, q);
        if (apq === 0) continue;
        // The rotation that zeroes a[p][q]; t is the smaller root, which keeps it stable.
        const theta = (at(q, q) - at(p, p)) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const sn = t * c;
        for (let k = 0; k < dim; k++) {
          const akp = at(k, p);
          const akq = at(k, q);
          a[k * dim + p] = c * akp - sn * akq;
          a[k * dim + q] = sn * akp + c * akq;
        }
        for (let k = 0; k < dim; k++) {
          const apk = at(p, k);
          const aqk = at(q, k);
          a[p * dim + k] = c * apk - sn * aqk;
          a[q * dim + k] = sn * apk + c * aqk;
        }
        for (let k = 0; k < dim; k++) {
          const vkp = v[k * dim + p] as number;
          const vkq = v[k * dim + q] as number;
          v[k * dim + p] = c * vkp - sn * vkq;
          v[k * dim + q] = sn * vkp + c * vkq;
        }
      }
    }
  }
  return { values: Float64Array.from({ length: dim }, (_, i) => at(i, i)), vectors: v };
}
