import * as tf from '@tensorflow/tfjs';
import { LOG_LOSS, LOG_LOSS_GRAD, hasKernel } from './kernelNames.js';

/**
 * Sigmoid cross-entropy from logits against 0/1 labels (same shape), summed and divided by `per`,
 * with its gradient in closed form, d/dx = (σ(x) - y)/per: 9 kernels for D's loss in stock ops
 * where autodiff through slices and two softplus terms takes 21, and 2 with a backend's LOG_LOSS
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
