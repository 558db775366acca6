import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { Dataset } from '../data/index.js';
import { classifierOutputs } from './classifierOutputs.js';
import { type GaussianStats, gaussianStats } from './gaussianStats.js';

/** Beside the classifier's weights: the test set's feature statistics, so an evaluator need not classify 10 000 images to start. */
export const REFERENCE_STATS_FILE = 'test-stats.json';

interface StoredStats {
  /** The test set they describe, and the weights that computed them: stale if either differs. */
  testFingerprint: string;
  weightsSha256: string;
  n: number;
  dim: number;
  mean: number[];
  cov: number[];
}

/**
 * The FID reference: the classifier's feature statistics of the test set. Read from the file
 * committed beside the classifier when it belongs to this test set and these weights; otherwise
 * (another dataset, retrained weights) computed.
 */
export async function referenceStats(classifier: tf.LayersModel, classifierDir: string, testSet: Dataset): Promise<GaussianStats> {
  const weightsSha256 = await weightsDigest(classifierDir);
  const stored = await readFile(join(classifierDir, REFERENCE_STATS_FILE), 'utf8').then(
    (text) => JSON.parse(text) as StoredStats,
    () => undefined,
  );
  if (stored?.testFingerprint === testSet.fingerprint && stored.weightsSha256 === weightsSha256) {
    return { n: stored.n, dim: stored.dim, mean: Float64Array.from(stored.mean), cov: Float64Array.from(stored.cov) };
  }
  return computeReferenceStats(classifier, testSet);
}

export async function computeReferenceStats(classifier: tf.LayersModel, testSet: Dataset): Promise<GaussianStats> {
  const { features, featureDim } = await classifierOutputs(classifier, testSet.images, testSet.count);
  return gaussianStats(features, testSet.count, featureDim);
}

/** Writes the reference statistics of `testSet` beside the classifier (scripts/classifier-test-stats.ts). */
export async function writeReferenceStats(classifier: tf.LayersModel, classifierDir: string, testSet: Dataset): Promise<void> {
  const s = await computeReferenceStats(classifier, testSet);
  const stored: StoredStats = {
    testFingerprint: testSet.fingerprint,
    weightsSha256: await weightsDigest(classifierDir),
    n: s.n,
    dim: s.dim,
    mean: Array.from(s.mean),
    cov: Array.from(s.cov),
  };
  await writeFile(join(classifierDir, REFERENCE_STATS_FILE), `${JSON.stringify(stored)}\n`);
}

async function weightsDigest(dir: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(join(dir, 'weights.bin')))
    .digest('hex');
}
