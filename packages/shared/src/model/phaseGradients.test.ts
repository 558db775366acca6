import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../data/index.js';
import { discriminatorLoss, generatorLoss } from './phaseGradients.js';

/** The losses as the paper writes them, log σ and log(1 - σ), differentiated by autodiff: the reference. */
const logD = (x: tf.Tensor): tf.Tensor => tf.log(tf.sigmoid(x));
const log1mD = (x: tf.Tensor): tf.Tensor => tf.log(tf.sub(1, tf.sigmoid(x)));

function relativeError(a: tf.Tensor, b: tf.Tensor): number {
  return (tf.norm(tf.sub(a, b)).arraySync() as number) / (tf.norm(b).arraySync() as number);
}

describe('GAN losses', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  // Logits within ±4, where the plain formula loses nothing to rounding.
  const logits = (n: number, seed: number): tf.Tensor2D =>
    tf.tensor2d(
      new Rng(seed).fillNormal(new Float32Array(n)).map((v) => 1.5 * v),
      [n, 1],
    );

  it('D: value and gradient match -mean(log D(real)) - mean(log(1 - D(fake)))', () => {
    const n = 12;
    const x = logits(2 * n, 3);
    const ours = tf.valueAndGrad((v: tf.Tensor) => discriminatorLoss(v, n))(x);
    const reference = tf.valueAndGrad(
      (v: tf.Tensor) => tf.neg(tf.add(tf.mean(logD(tf.slice(v, [0, 0], [n, 1]))), tf.mean(log1mD(tf.slice(v, [n, 0], [n, 1]))))) as tf.Scalar,
    )(x);
    expect(ours.value.arraySync()).toBeCloseTo(reference.value.arraySync() as number, 5);
    expect(relativeError(ours.grad, reference.grad)).toBeLessThan(1e-5);
  });

  it('G (non-saturating): value and gradient match -mean(log D(fake))', () => {
    const x = logits(10, 4);
    const ours = tf.valueAndGrad((v: tf.Tensor) => generatorLoss(v))(x);
    const reference = tf.valueAndGrad((v: tf.Tensor) => tf.neg(tf.mean(logD(v))) as tf.Scalar)(x);
    expect(ours.value.arraySync()).toBeCloseTo(reference.value.arraySync() as number, 5);
    expect(relativeError(ours.grad, reference.grad)).toBeLessThan(1e-5);
  });

  it('stay finite for saturated logits, where log σ would give -Infinity', () => {
    const x = tf.tensor2d([-200, 200, 200, -200], [4, 1]);
    const d = tf.valueAndGrad((v: tf.Tensor) => discriminatorLoss(v, 2))(x);
    // real -200 and fake 200 are both maximally wrong: 200 per term, averaged per half.
    expect(d.value.arraySync()).toBeCloseTo(200, 3);
    expect(Array.from(d.grad.dataSync())).toEqual([-0.5, 0, 0.5, 0]);
    const g = tf.valueAndGrad((v: tf.Tensor) => generatorLoss(v))(x);
    expect(Number.isFinite(g.value.arraySync())).toBe(true);
    expect(Array.from(g.grad.dataSync()).every(Number.isFinite)).toBe(true);
  });

  it('leave no tensor behind', () => {
    const x = logits(8, 5);
    const step = () => tf.tidy(() => tf.valueAndGrad((v: tf.Tensor) => discriminatorLoss(v, 4))(x).grad);
    tf.dispose(step());
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) tf.dispose(step());
    expect(tf.memory().numTensors).toBe(before);
  });
});
