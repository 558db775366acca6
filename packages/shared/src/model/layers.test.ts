import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../backends/index.js';
import { Rng } from '../data/index.js';
import { BN_EPSILON } from '../ops/index.js';
import { batchNorm } from './layers.js';
import type { BatchNormStat } from './preset.js';

/** Batch norm as plain ops, differentiated by tfjs's autodiff: the reference for the closed-form gradient. */
function autodiffBatchNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  const { mean, variance } = tf.moments(
    x,
    x.shape.slice(0, -1).map((_, i) => i),
  );
  return tf.add(tf.mul(tf.sub(x, mean), tf.mul(tf.rsqrt(tf.add(variance, BN_EPSILON)), gamma)), beta);
}

function randomTensor(rng: Rng, shape: number[], scale = 1, offset = 0): tf.Tensor {
  return tf.tensor(
    rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b))).map((v) => v * scale + offset),
    shape,
  );
}

// wasm too: its FusedBatchNorm kernel does the normalisation there.
describe.each(['cpu', 'wasm'] as const)('batchNorm (training mode) on %s', (backend) => {
  beforeAll(async () => {
    expect((await selectBackend(backend)).name).toBe(backend);
  });
  afterAll(async () => {
    await selectBackend('cpu');
  });

  it.each([[[16, 8]], [[4, 5, 5, 3]]])('value, statistics and gradients of x, gamma and beta match autodiff for input %j', (shape) => {
    const rng = new Rng(5);
    const c = shape.at(-1) as number;
    const x = randomTensor(rng, shape, 3, 2);
    const gamma = randomTensor(rng, [c], 0.5, 1);
    const beta = randomTensor(rng, [c]);
    // A weighted sum, so that every output element gets its own upstream gradient.
    const w = randomTensor(rng, shape);
    const loss = (bn: (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor) => (xv: tf.Tensor, gv: tf.Tensor, bv: tf.Tensor) =>
      tf.sum(tf.mul(bn(xv, gv, bv), w)) as tf.Scalar;
    const stats: BatchNormStat[] = [];
    const params = (g: tf.Tensor, b: tf.Tensor) =>
      new Map([
        ['bn/gamma', g],
        ['bn/beta', b],
      ]);
    const ours = tf.valueAndGrads(loss((xv, gv, bv) => batchNorm(params(gv, bv), 'bn', xv, true, stats)))([x, gamma, beta]);
    const reference = tf.valueAndGrads(loss(autodiffBatchNorm))([x, gamma, beta]);
    expect(ours.value.arraySync()).toBeCloseTo(reference.value.arraySync() as number, 3);
    ours.grads.forEach((g, i) => {
      const ref = reference.grads[i] as tf.Tensor;
      const err = (tf.norm(tf.sub(g, ref)).arraySync() as number) / (tf.norm(ref).arraySync() as number);
      expect(err).toBeLessThan(1e-5);
    });
    const moments = tf.moments(
      x,
      shape.slice(0, -1).map((_, i) => i),
    );
    expect(stats).toHaveLength(1);
    expect(Array.from(stats[0]?.moments.dataSync() ?? [])).toEqual([...moments.mean.dataSync(), ...moments.variance.dataSync()]);
  });

  it('leaves only the statistics it hands over, step after step', () => {
    const rng = new Rng(6);
    const x = randomTensor(rng, [8, 4]);
    const gamma = randomTensor(rng, [4], 0.1, 1);
    const beta = randomTensor(rng, [4]);
    const step = () =>
      tf.tidy(() => {
        const stats: BatchNormStat[] = [];
        const { value, grads } = tf.valueAndGrads(
          (xv: tf.Tensor, gv: tf.Tensor, bv: tf.Tensor) =>
            tf.sum(
              tf.square(
                batchNorm(
                  new Map([
                    ['bn/gamma', gv],
                    ['bn/beta', bv],
                  ]),
                  'bn',
                  xv,
                  true,
                  stats,
                ),
              ),
            ) as tf.Scalar,
        )([x, gamma, beta]);
        tf.dispose(stats.map((s) => s.moments));
        return [value, ...grads];
      });
    tf.dispose(step());
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) tf.dispose(step());
    expect(tf.memory().numTensors).toBe(before);
  });
});
