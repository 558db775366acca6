import * as tf from '@tensorflow/tfjs';
import { Rng, mixSeed } from '../data/index.js';
import { type ParamArrays, toTensors } from './params.js';
import type { BatchNormStat, ModelPreset } from './preset.js';

/** Pooled [mean, variance] of several batches from their own sizes, means and biased variances. */
export function poolBatchNormStats(parts: readonly { samples: number; stats: Float32Array | undefined }[], channels: number): Float64Array {
  const total = parts.reduce((n, p) => n + p.samples, 0);
  const out = new Float64Array(2 * channels);
  for (let c = 0; c < channels; c++) {
    let mean = 0;
    let second = 0;
    for (const p of parts) {
      if (!p.stats || p.stats.length !== 2 * channels) throw new Error('missing batch-norm statistics');
      const mu = p.stats[c] as number;
      const v = p.stats[channels + c] as number;
      mean += (p.samples / total) * mu;
      second += (p.samples / total) * (v + mu * mu);
    }
    out[c] = mean;
    out[channels + c] = Math.max(0, second - mean * mean);
  }
  return out;
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
