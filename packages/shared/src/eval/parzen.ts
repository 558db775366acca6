import * as tf from '@tensorflow/tfjs';

/** The candidate window widths of Goodfellow et al. (2014): numpy.logspace(-1, 0, 10). */
export const PARZEN_SIGMAS: readonly number[] = Array.from({ length: 10 }, (_, i) => 10 ** (-1 + i / 9));

export interface ParzenResult {
  /** Mean log-likelihood (nats) of the test images. */
  mean: number;
  /** Standard error of that mean: population std / sqrt(test), as numpy's std in the paper's code. */
  stderr: number;
  /** The window width chosen on the validation images. */
  sigma: number;
  /** Mean validation log-likelihood of every candidate width. */
  sigmaScores: { sigma: number; mean: number }[];
  samples: number;
  test: number;
  validation: number;
}

/** Rows of the queries per distance block: a 500 x 10 000 block is 20 MB of float32. */
const CHUNK = 500;

/**
 * log p(x) under a Gaussian Parzen window on `centres` (rows of d values), for every query row
 * and every width: logsumexp_i(-||x - mu_i||^2 / (2 sigma^2)) - log N - (d/2) log(2 pi sigma^2).
 * Squared distances come from ||x||^2 + ||mu||^2 - 2 x.mu (one matMul per block of queries) on the
 * active backend, logsumexp is tfjs's max-shifted one in float32, and the constants are added in
 * float64. Returns one array of log-likelihoods per width.
 */
export async function parzenLogLikelihoods(
  centres: Float32Array,
  nCentres: number,
  queries: Float32Array,
  nQueries: number,
  sigmas: readonly number[],
): Promise<Float64Array[]> {
  const d = centres.length / nCentres;
  if (!Number.isInteger(d) || queries.length !== nQueries * d) throw new Error(`parzen: ${nCentres} centres and ${nQueries} queries do not share a dimension`);
  const out = sigmas.map(() => new Float64Array(nQueries));
  const constants = sigmas.map((s) => -Math.log(nCentres) - (d / 2) * Math.log(2 * Math.PI * s * s));
  // Transposed once: wasm's matMul with a transpose flag is several times slower.
  const [muT, muSq] = tf.tidy(() => {
    const mu = tf.tensor2d(centres, [nCentres, d]);
    return [tf.transpose(mu), tf.sum(tf.square(mu), 1)];
  });
  try {
    for (let start = 0; start < nQueries; start += CHUNK) {
      const rows = Math.min(CHUNK, nQueries - start);
      const lse = tf.tidy(() => {
        const x = tf.tensor2d(queries.subarray(start * d, (start + rows) * d), [rows, d]);
        const xSq = tf.sum(tf.square(x), 1, true);
        // Rounding can make a tiny squared distance negative.
        const dist = tf.relu(tf.sub(tf.add(xSq, muSq), tf.mul(tf.matMul(x, muT), 2)));
        return tf.stack(sigmas.map((s) => tf.tidy(() => tf.logSumExp(tf.mul(dist, -1 / (2 * s * s)), 1))));
      });
      // Awaiting between blocks keeps the event loop (a coordinator's sockets) alive.
      const values = await lse.data();
      lse.dispose();
      sigmas.forEach((_, k) => {
        const row = out[k] as Float64Array;
        for (let r = 0; r < rows; r++) row[start + r] = (values[k * rows + r] as number) + (constants[k] as number);
      });
    }
  } finally {
    tf.dispose([muT, muSq]);
  }
  return out;
}

/**
 * The Parzen-window evaluation of Goodfellow et al. (2014, Table 1): generator samples are the
 * window centres, the width is the candidate with the best mean log-likelihood on the validation
 * images, and the score is the mean log-likelihood of the test images with its standard error.
 * All images as rows of pixels in [0, 1].
 */
export async function parzenEvaluate(
  samples: Float32Array,
  nSamples: number,
  validation: Float32Array,
  nValidation: number,
  test: Float32Array,
  nTest: number,
  sigmas: readonly number[] = PARZEN_SIGMAS,
): Promise<ParzenResult> {
  const sigmaScores = (await parzenLogLikelihoods(samples, nSamples, validation, nValidation, sigmas)).map((ll, k) => ({
    sigma: sigmas[k] as number,
    mean: meanOf(ll),
  }));
  const best = sigmaScores.reduce((a, b) => (b.mean > a.mean ? b : a));
  const [ll] = await parzenLogLikelihoods(samples, nSamples, test, nTest, [best.sigma]);
  const values = ll as Float64Array;
  const mean = meanOf(values);
  let sq = 0;
  for (const v of values) sq += (v - mean) ** 2;
  return { mean, stderr: Math.sqrt(sq / nTest) / Math.sqrt(nTest), sigma: best.sigma, sigmaScores, samples: nSamples, test: nTest, validation: nValidation };
}

function meanOf(values: Float64Array): number {
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}
