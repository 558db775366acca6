import * as tf from '@tensorflow/tfjs';
import { LOG_LOSS, LOG_LOSS_GRAD } from '../backend/webgpuLogLoss.js';
import { hasKernel } from '../backend/webgpuProgram.js';
import type { Group, ModelPreset, TensorMap } from './preset.js';
import { specsOf } from './params.js';

/**
 * Sigmoid cross-entropy from logits against 0/1 labels (same shape), summed and divided by `per`,
 * with its gradient in closed form, d/dx = (σ(x) - y)/per: 9 kernels for D's loss in stock ops
 * where autodiff through slices and two softplus terms takes 21, and 2 with ganfleet's webgpu
 * kernels; each is a GPU dispatch with a fixed cost.
 * -y·log σ(x) - (1 - y)·log(1 - σ(x)) = softplus(x) - y·x, which is numerically safe.
 */
export function logLoss(logits: tf.Tensor, labels: tf.Tensor, per: number): tf.Scalar {
  const kernels = hasKernel(LOG_LOSS);
  const attrs = { scale: 1 / per };
  const f = tf.customGrad((x, save) => {
    const xs = x as tf.Tensor;
    // Saved, not just captured: the forward pass's scope disposes what it made before the backward runs.
    (save as tf.GradSaveFunc)([xs, labels]);
    const value = kernels
      ? (tf.engine().runKernel(LOG_LOSS, { x: xs, labels }, attrs) as tf.Scalar)
      : scaleBy(tf.mean(tf.sub(tf.softplus(xs), tf.mul(labels, xs))), xs.size / per);
    return {
      value,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [sx, sLabels] = saved as [tf.Tensor, tf.Tensor];
        if (kernels) return tf.engine().runKernel(LOG_LOSS_GRAD, { x: sx, labels: sLabels, dy: dy as tf.Tensor }, attrs) as tf.Tensor;
        return tf.mul(tf.sub(tf.sigmoid(sx), sLabels), tf.div(dy as tf.Tensor, per));
      },
    };
  });
  return f(logits) as tf.Scalar;
}

const scaleBy = (t: tf.Scalar, factor: number): tf.Scalar => (factor === 1 ? t : tf.mul(t, factor));

/** Logits' labels: `real` ones, then zeros up to `total`, as an [total, 1] tensor. */
function labels(real: number, total: number): tf.Tensor2D {
  return tf.tensor2d(
    Float32Array.from({ length: total }, (_, i) => (i < real ? 1 : 0)),
    [total, 1],
  );
}

/** D: -mean(log D(x)) - mean(log(1 - D(G(z)))), from the logits of the real batch followed by the fake one. */
export function discriminatorLoss(logits: tf.Tensor, realCount: number): tf.Scalar {
  return logLoss(logits, labels(realCount, logits.shape[0] as number), realCount);
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
export function phaseGradients(preset: ModelPreset, params: TensorMap, phase: Group, z: tf.Tensor2D, real?: tf.Tensor4D): PhaseGradients {
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
    return discriminatorLoss(preset.discriminator(p, tf.concat([real, gen.images])), real.shape[0]);
  })(names.map((n) => params.get(n) as tf.Tensor));
  tf.dispose(kept);
  return { loss: value as tf.Scalar, grads: new Map(names.map((n, i) => [n, grads[i] as tf.Tensor])), stats };
}
