import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../backends/index.js';
import { Rng } from '../data/index.js';
import { PARZEN_SIGMAS, parzenEvaluate, parzenLogLikelihoods } from './parzen.js';

/** The definition, term by term in float64: log mean_i N(x; mu_i, sigma^2 I). */
function bruteForce(centres: Float32Array, n: number, x: ArrayLike<number>, sigma: number): number {
  const d = centres.length / n;
  const logs: number[] = [];
  for (let i = 0; i < n; i++) {
    let sq = 0;
    for (let j = 0; j < d; j++) sq += ((x[j] as number) - (centres[i * d + j] as number)) ** 2;
    logs.push(-sq / (2 * sigma * sigma) - (d / 2) * Math.log(2 * Math.PI * sigma * sigma));
  }
  const max = Math.max(...logs);
  return max + Math.log(logs.reduce((s, l) => s + Math.exp(l - max), 0) / n);
}

/** MNIST-like rows in [0, 1]: mostly 0, some 1, some in between. */
function images(n: number, d: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n * d }, () => {
    const u = rng.uniform();
    return u < 0.8 ? 0 : u < 0.9 ? 1 : rng.uniform();
  });
}

describe('Parzen window', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('uses the ten widths of the paper', () => {
    expect(PARZEN_SIGMAS).toHaveLength(10);
    expect(PARZEN_SIGMAS[0]).toBeCloseTo(0.1, 12);
    expect(PARZEN_SIGMAS[9]).toBeCloseTo(1, 12);
    expect((PARZEN_SIGMAS[1] as number) / (PARZEN_SIGMAS[0] as number)).toBeCloseTo(10 ** (1 / 9), 12);
  });

  it('reproduces a hand computation with three centres in two dimensions', async () => {
    // Centres (0,0), (1,0), (0,2). From x = (1,1) the squared distances are 2, 1, 2; from (0,0) 0, 1, 4.
    const centres = Float32Array.from([0, 0, 1, 0, 0, 2]);
    const [half, one] = await parzenLogLikelihoods(centres, 3, Float32Array.from([1, 1, 0, 0]), 2, [0.5, 1]);
    // sigma 0.5: 2 sigma^2 = 0.5, (d/2) log(2 pi sigma^2) = log(pi / 2).
    expect(half?.[0]).toBeCloseTo(Math.log((2 * Math.exp(-4) + Math.exp(-2)) / 3) - Math.log(Math.PI / 2), 5);
    expect(half?.[1]).toBeCloseTo(Math.log((1 + Math.exp(-2) + Math.exp(-8)) / 3) - Math.log(Math.PI / 2), 5);
    // sigma 1: 2 sigma^2 = 2, constant log(2 pi).
    expect(one?.[0]).toBeCloseTo(Math.log((2 * Math.exp(-1) + Math.exp(-0.5)) / 3) - Math.log(2 * Math.PI), 5);
    expect(one?.[1]).toBeCloseTo(Math.log((1 + Math.exp(-0.5) + Math.exp(-2)) / 3) - Math.log(2 * Math.PI), 5);
  });

  it('matches the definition on 784-pixel images, across blocks of queries, for the extreme widths', async () => {
    const d = 784;
    const centres = images(300, d, 1);
    const queries = images(520, d, 2);
    const got = await parzenLogLikelihoods(centres, 300, queries, 520, [0.1, 1]);
    for (const q of [0, 1, 499, 500, 519]) {
      const x = queries.subarray(q * d, (q + 1) * d);
      // Values are around -1e4 (sigma 0.1): float32 distances leave a relative error near 1e-6.
      expect(Math.abs((got[0]?.[q] as number) - bruteForce(centres, 300, x, 0.1))).toBeLessThan(0.05);
      expect(Math.abs((got[1]?.[q] as number) - bruteForce(centres, 300, x, 1))).toBeLessThan(0.005);
    }
  });

  it('picks the width with the best validation mean and reports the test mean with its standard error', async () => {
    const d = 16;
    const centres = images(40, d, 3);
    const validation = images(30, d, 4);
    const test = images(25, d, 5);
    const sigmas = [0.05, 0.2, 0.5, 2];
    const r = await parzenEvaluate(centres, 40, validation, 30, test, 25, sigmas);
    const valMeans = sigmas.map(
      (s) => Array.from({ length: 30 }, (_, q) => bruteForce(centres, 40, validation.subarray(q * d, (q + 1) * d), s)).reduce((a, b) => a + b) / 30,
    );
    const best = sigmas[valMeans.indexOf(Math.max(...valMeans))] as number;
    // The grid must not be trivially decided at an end for the test to mean anything.
    expect(best).not.toBe(sigmas[0]);
    expect(best).not.toBe(sigmas[3]);
    expect(r.sigma).toBe(best);
    r.sigmaScores.forEach((s, k) => expect(s.mean).toBeCloseTo(valMeans[k] as number, 3));
    const ll = Array.from({ length: 25 }, (_, q) => bruteForce(centres, 40, test.subarray(q * d, (q + 1) * d), best));
    const mean = ll.reduce((a, b) => a + b) / 25;
    const std = Math.sqrt(ll.reduce((a, b) => a + (b - mean) ** 2, 0) / 25);
    expect(r.mean).toBeCloseTo(mean, 3);
    expect(r.stderr).toBeCloseTo(std / 5, 4);
    expect(r).toMatchObject({ samples: 40, validation: 30, test: 25 });
  });
});
