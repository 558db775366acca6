import * as tf from '@tensorflow/tfjs';
import { Rng, mixSeed } from '../data/index.js';
import { type ParamArrays, sizeOf, toTensors } from './params.js';
import type { BatchNormStat, ModelPreset } from './preset.js';
import { type SumTerm, addToExpansion, roundExpansion, sumTerms, twoProduct } from './exactSum.js';

/** The tensors of a G round's batch-norm statistics on the wire: per layer, its channels' means then their variances. */
export function batchNormStatSpecs(preset: ModelPreset): { name: string; shape: number[] }[] {
  return preset.batchNorms.map((bn) => {
    const spec = preset.params.find((p) => p.name === bn.movingMean);
    if (!spec) throw new Error(`missing moving mean of ${bn.layer}`);
    return { name: bn.layer, shape: [2 * sizeOf(spec.shape)] };
  });
}

/**
 * One batch's statistics as exact sums over its samples: per channel Σx = n·mean and
 * Σx² = n·(variance + mean²) (variance biased), the second as a float64 and the components it
 * cannot hold. Sums of these add exactly in any grouping (see sumTerms), which is how a relay
 * pools its children's batches and its parent the relays'.
 */
export function batchNormSums(samples: number, stats: Float32Array): SumTerm {
  const channels = stats.length / 2;
  const values = new Float64Array(2 * channels);
  const rest = new Map<number, number[]>();
  for (let c = 0; c < channels; c++) {
    const mean = stats[c] as number;
    const sum = samples * mean;
    const [square, error] = twoProduct(sum, mean);
    const partials: number[] = [];
    for (const x of [samples * (stats[channels + c] as number), square, error]) addToExpansion(partials, x);
    values[c] = sum;
    values[channels + c] = roundExpansion(partials);
    addToExpansion(partials, -(values[channels + c] as number));
    const left = partials.filter((v) => v !== 0);
    if (left.length > 0) rest.set(channels + c, left);
  }
  return { values, weight: 1, ...(rest.size ? { rest } : {}) };
}

/** Pooled [mean, variance] from sums over `total` samples (batchNormSums of each batch, or of groups of them). */
export function poolBatchNormSums(terms: readonly SumTerm[], channels: number, total: number): Float64Array {
  const sums = new Float64Array(2 * channels);
  sumTerms(terms, sums);
  const out = new Float64Array(2 * channels);
  for (let c = 0; c < channels; c++) {
    const mean = (sums[c] as number) / total;
    out[c] = mean;
    out[channels + c] = Math.max(0, (sums[channels + c] as number) / total - mean * mean);
  }
  return out;
}

/**
 * Pooled [mean, variance] of several batches from their own sizes, means and biased variances:
 * exactly those of the union of the batches, however they are grouped.
 */
export function poolBatchNormStats(parts: readonly { samples: number; stats: Float32Array | undefined }[], channels: number): Float64Array {
  const total = parts.reduce((n, p) => n + p.samples, 0);
  const terms = parts.map((p) => {
    if (!p.stats || p.stats.length !== 2 * channels) throw new Error('missing batch-norm statistics');
    return batchNormSums(p.samples, p.stats);
  });
  return poolBatchNormSums(terms, channels, total);
}

export interface RecalibrationSettings {
  /** Seeds the noise batches, so the same weights always get the same statistics. */
  seed: number;
  /** Batch size of each training-mode pass: the run's, since batch norm normalised batches of that size. */
  batchSize: number;
  /** Noise samples in all (rounded up to whole batches). */
  samples: number;
}

/**
 * Batch-norm inference statistics that belong to the given generator weights (averaged weights
 * have no statistics of their own): the generator runs in training mode over fixed noise batches
 * and each layer's batch statistics are pooled exactly over them, as for one big batch.
 * Returns G's parameters with the moving statistics replaced; without batch norm, G's as given.
 */
export async function recalibrateBatchNorm(preset: ModelPreset, params: ReadonlyMap<string, Float32Array>, s: RecalibrationSettings): Promise<ParamArrays> {
  const out: ParamArrays = new Map(preset.params.filter((p) => p.network === 'G').map((p) => [p.name, params.get(p.name) as Float32Array]));
  if (preset.batchNorms.length === 0) return out;
  const batches = Math.ceil(s.samples / s.batchSize);
  const parts = new Map(preset.batchNorms.map((bn) => [bn.layer, [] as { samples: number; stats: Float32Array }[]]));
  const tensors = toTensors(preset, out);
  try {
    for (let b = 0; b < batches; b++) {
      const noise = new Rng(mixSeed(s.seed, 0xb7, b)).fillNormal(new Float32Array(s.batchSize * preset.noiseDim));
      // The statistics are kept past the scope by batchNorm itself; everything else is released.
      let stats: BatchNormStat[] = [];
      tf.tidy(() => void (stats = preset.generator(tensors, tf.tensor2d(noise, [s.batchSize, preset.noiseDim]), true).stats));
      try {
        for (const st of stats) parts.get(st.layer)?.push({ samples: s.batchSize, stats: (await st.moments.data()) as Float32Array });
      } finally {
        tf.dispose(stats.map((st) => st.moments));
      }
    }
  } finally {
    tf.dispose([...tensors.values()]);
  }
  for (const bn of preset.batchNorms) {
    const channels = (out.get(bn.movingMean) as Float32Array).length;
    const pooled = poolBatchNormStats(parts.get(bn.layer) ?? [], channels);
    out.set(bn.movingMean, Float32Array.from(pooled.subarray(0, channels)));
    out.set(bn.movingVariance, Float32Array.from(pooled.subarray(channels)));
  }
  return out;
}
