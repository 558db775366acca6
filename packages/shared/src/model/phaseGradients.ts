import * as tf from '@tensorflow/tfjs';
import { logLoss } from '../ops/index.js';
import type { ModelPreset, TensorMap } from './preset.js';
import type { Phase } from '../wire/index.js';
import { specsOf } from './params.js';

/** Logits' labels: `real` of value `realLabel`, then zeros up to `total`, as an [total, 1] tensor. */
function labels(real: number, total: number, realLabel = 1): tf.Tensor2D {
  return tf.tensor2d(
    Float32Array.from({ length: total }, (_, i) => (i < real ? realLabel : 0)),
    [total, 1],
  );
}

/**
 * D: -mean(log D(x)) - mean(log(1 - D(G(z)))), from the logits of the real batch followed by the
 * fake one. A `realLabel` below 1 is one-sided label smoothing (Salimans et al. 2016).
 */
export function discriminatorLoss(logits: tf.Tensor, realCount: number, realLabel = 1): tf.Scalar {
  return logLoss(logits, labels(realCount, logits.shape[0] as number, realLabel), realCount);
}

/** G, non-saturating: -mean(log D(G(z))). */
export function generatorLoss(fakeLogits: tf.Tensor): tf.Scalar {
  const n = fakeLogits.shape[0] as number;
  return logLoss(fakeLogits, labels(n, n), n);
}

export interface PhaseGradients {
  loss: tf.Scalar;
  /** Gradients of the phase's trainable parameters, by name. */
  grads: Map<string, tf.Tensor>;
  /** Per batch-norm layer batch mean and variance, concatenated [mean, variance] (G phase only). */
  stats: Map<string, tf.Tensor1D>;
}

/**
 * Gradients of one phase on one batch: D phase differentiates the discriminator loss w.r.t. D's
 * parameters (G runs in training mode, no gradient); G phase the generator loss w.r.t. G's.
 * Everything returned is owned by the caller.
 */
export function phaseGradients(preset: ModelPreset, params: TensorMap, phase: Phase, z: tf.Tensor2D, real?: tf.Tensor4D, realLabel = 1): PhaseGradients {
  const names = specsOf(preset, phase).map((s) => s.name);
  const kept: tf.Tensor[] = [];
  const stats = new Map<string, tf.Tensor1D>();
  const { value, grads } = tf.valueAndGrads((...vars: tf.Tensor[]) => {
    const p = new Map(params);
    names.forEach((n, i) => p.set(n, vars[i] as tf.Tensor));
    const gen = preset.generator(p, z, true);
    for (const s of gen.stats) {
      if (phase === 'G') stats.set(s.layer, s.moments);
      else kept.push(s.moments);
    }
    if (phase === 'G') return generatorLoss(preset.discriminator(p, gen.images));
    if (!real) throw new Error('D phase needs a real batch');
    // One D pass over real and fake together: half the kernel launches of two passes, same loss.
    return discriminatorLoss(preset.discriminator(p, tf.concat([real, gen.images])), real.shape[0], realLabel);
  })(names.map((n) => params.get(n) as tf.Tensor));
  tf.dispose(kept);
  return { loss: value as tf.Scalar, grads: new Map(names.map((n, i) => [n, grads[i] as tf.Tensor])), stats };
}
