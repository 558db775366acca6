import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../backends/index.js';
import { type Dataset, gatherBatch, loadDataset, Rng } from '../data/index.js';
import { CLASSIFIER_DIR, CLASSIFIER_FEATURE_DIM, CLASSIFIER_FEATURE_LAYER, loadClassifier } from './classifier.js';
import { type EvalResult, Evaluator } from './evaluator.js';
import { PARZEN_SIGMAS } from './parzen.js';
import { computeReferenceStats, referenceStats } from './referenceStats.js';

const N = 2000;

describe('the committed reference statistics', () => {
  it("equal the test set's features as the committed classifier computes them now", async () => {
    await selectBackend('wasm');
    const classifier = await loadClassifier();
    try {
      const testSet = await loadDataset({ split: 'test' });
      const [committed, computed] = [await referenceStats(classifier, CLASSIFIER_DIR, testSet), await computeReferenceStats(classifier, testSet)];
      expect(committed.n).toBe(10_000);
      let worst = 0;
      committed.cov.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - (computed.cov[i] as number)))));
      committed.mean.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - (computed.mean[i] as number)))));
      // Recomputed on the same backend: the same float32 features, summed in float64 in the same order.
      expect(worst).toBeLessThan(1e-9);
    } finally {
      classifier.dispose();
    }
  });
});

describe('Evaluator with the committed classifier', () => {
  let evaluator: Evaluator;
  let train: Dataset;
  let real: EvalResult;
  let noise: EvalResult;

  beforeAll(async () => {
    await selectBackend('wasm');
    [evaluator, train] = await Promise.all([Evaluator.create(), loadDataset({ split: 'train' })]);
    real = await evaluator.evaluate(
      gatherBatch(
        train,
        Array.from({ length: N }, (_, i) => i),
      ),
      N,
    );
    const rng = new Rng(1);
    noise = await evaluator.evaluate(
      Float32Array.from({ length: N * 784 }, () => rng.uniform() * 2 - 1),
      N,
    );
  });
  afterAll(() => evaluator?.dispose());

  it('scores real training images as close to the test set: FID near 0, all 10 modes, Inception Score near 10', () => {
    expect(real).toMatchObject({ n: N, modes: 10, featureLayer: CLASSIFIER_FEATURE_LAYER, featureDim: CLASSIFIER_FEATURE_DIM });
    expect(real.fid).toBeGreaterThanOrEqual(0);
    // Measured: 3.6 against 857 for noise. Not 0: 2000 samples, and training images, which the classifier has seen.
    expect(real.fid).toBeLessThan(noise.fid / 100);
    expect(real.inceptionScore).toBeGreaterThan(9);
    expect(real.klUniform).toBeLessThan(0.01);
    expect(real.meanConfidence).toBeGreaterThan(0.97);
    expect(real.classHistogram.reduce((a, b) => a + b)).toBe(N);
  });

  it('scores uniform noise images badly: large FID, low Inception Score', () => {
    expect(noise.inceptionScore).toBeLessThan(2);
    expect(noise.modes).toBeLessThan(10);
  });

  it('finds one mode in a generator collapsed to one digit', async () => {
    const zeros = Array.from({ length: train.count }, (_, i) => i)
      .filter((i) => train.labels[i] === 0)
      .slice(0, N);
    const r = await evaluator.evaluate(gatherBatch(train, zeros), N);
    expect(r.modes).toBe(1);
    expect((r.classHistogram[0] as number) / N).toBeGreaterThan(0.99);
    expect(r.klUniform).toBeGreaterThan(0.95 * Math.log(10));
    expect(r.inceptionScore).toBeLessThan(1.2);
    expect(r.fid).toBeGreaterThan(10 * real.fid);
  });

  it('leaves no tensors behind, Parzen included', async () => {
    const before = tf.memory().numTensors;
    const r = await evaluator.evaluate(
      gatherBatch(
        train,
        Array.from({ length: 300 }, (_, i) => i),
      ),
      300,
      { parzen: { samples: 200, test: 100, validation: 100 } },
    );
    expect(tf.memory().numTensors).toBe(before);
    expect(r.parzen).toMatchObject({ samples: 200, test: 100, validation: 100 });
    expect(PARZEN_SIGMAS).toContain(r.parzen?.sigma);
    expect(Number.isFinite(r.parzen?.mean)).toBe(true);
    const other = await Evaluator.create();
    other.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
