import * as tf from '@tensorflow/tfjs';
import type { Group, ModelPreset, TensorMap } from './preset.js';
import { specsOf } from './params.js';

/** Sigmoid cross-entropy from logits against a constant label, averaged: numerically safe log-loss. */
export function sigmoidCrossEntropy(logits: tf.Tensor, label: 0 | 1): tf.Scalar {
  // -log sigmoid(x) = softplus(-x); -log(1 - sigmoid(x)) = softplus(x)
  return tf.mean(tf.softplus(label === 1 ? tf.neg(logits) : logits));
}

/** D: -mean(log D(x) + log(1 - D(G(z)))); computed from logits. */
export function discriminatorLoss(realLogits: tf.Tensor, fakeLogits: tf.Tensor): tf.Scalar {
  return tf.add(sigmoidCrossEntropy(realLogits, 1), sigmoidCrossEntropy(fakeLogits, 0));
}

/** G, non-saturating: -mean(log D(G(z))). */
export function generatorLoss(fakeLogits: tf.Tensor): tf.Scalar {
  return sigmoidCrossEntropy(fakeLogits, 1);
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
export function phaseGradients(preset: ModelPreset, params: TensorMap, phase: Group, z: tf.Tensor2D, real?: tf.Tensor4D): PhaseGradients {
  const names = specsOf(preset, phase).map((s) => s.name);
  const kept: tf.Tensor[] = [];
  const stats = new Map<string, tf.Tensor1D>();
  const { value, grads } = tf.valueAndGrads((...vars: tf.Tensor[]) => {
    const p = new Map(params);
    names.forEach((n, i) => p.set(n, vars[i] as tf.Tensor));
    const gen = preset.generator(p, z, true);
    for (const s of gen.stats) {
      kept.push(s.mean, s.variance);
      if (phase === 'G') stats.set(s.layer, tf.keep(tf.concat([s.mean, s.variance])));
    }
    if (phase === 'G') return generatorLoss(preset.discriminator(p, gen.images));
    if (!real) throw new Error('D phase needs a real batch');
    // One D pass over real and fake together: half the kernel launches of two passes, same loss.
    const logits = preset.discriminator(p, tf.concat([real, gen.images]));
    const n = real.shape[0];
    return discriminatorLoss(tf.slice(logits, [0, 0], [n, 1]), tf.slice(logits, [n, 0], [-1, 1]));
  })(names.map((n) => params.get(n) as tf.Tensor));
  tf.dispose(kept);
  return { loss: value as tf.Scalar, grads: new Map(names.map((n, i) => [n, grads[i] as tf.Tensor])), stats };
}
