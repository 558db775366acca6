import { updateLoops } from '@ganfleet/shared/model';

/** Adam hyper-parameters. */
export interface AdamConfig {
  learningRate: number;
  /**
   * A network's own learning rate in place of learningRate (e.g. a slower D, the two-timescale
   * update rule); each network has its own Adam either way.
   */
  networkLearningRates?: { G?: number; D?: number };
  beta1: number;
  beta2: number;
  /** TensorFlow.js's default epsilon for float32. */
  epsilon: number;
}

export interface AdamSlots {
  m: Float32Array;
  v: Float32Array;
}

/**
 * Adam over plain float32 arrays, the same update rule as tf.train.adam (bias-corrected moments,
 * epsilon added to the square root). Runs on the coordinator without any TensorFlow.js backend,
 * so it is identical wherever the coordinator runs. With a gradient within ±MAX_COMBINED_GRADIENT
 * (aggregation.ts) and a finite state, the new state is finite: v stays below 1e36 (float32 ends
 * at 3.4e38) and a step moves a parameter by at most about 16·lr.
 */
export class Adam {
  /** Number of updates applied so far (the `t` of the bias correction). */
  t = 0;
  readonly slots = new Map<string, AdamSlots>();

  constructor(readonly config: AdamConfig) {}

  /** One update of every parameter in `grads`, in place; `lrScale` multiplies the learning rate (a decay schedule). */
  apply(params: Map<string, Float32Array>, grads: ReadonlyMap<string, Float32Array>, lrScale = 1): void {
    const step = this.begin(lrScale);
    for (const [name, g] of grads) {
      const p = params.get(name);
      if (!p || p.length !== g.length) throw new Error(`Adam: no parameter ${name} of length ${g.length}`);
      this.update(step, name, p, g, 0, g.length);
    }
  }

  /** Starts the next update (its `t`); update() then applies it to any parameter, in any order and in pieces. */
  begin(lrScale = 1): AdamStep {
    this.t += 1;
    // Bias corrections folded into two constants: p -= (lr / c1) * m / (sqrt(v / c2) + eps).
    return { rate: (this.config.learningRate * lrScale) / (1 - this.config.beta1 ** this.t), invC2: 1 / (1 - this.config.beta2 ** this.t) };
  }

  /**
   * Applies `step` to values [from, to) of parameter `name`; each value changes only with its own
   * gradient and moments. With `copy` (to - from values) the new values are written there too.
   */
  update(step: AdamStep, name: string, p: Float32Array, g: Float32Array, from: number, to: number, copy?: Float32Array): void {
    let s = this.slots.get(name);
    if (!s) {
      s = { m: new Float32Array(g.length), v: new Float32Array(g.length) };
      this.slots.set(name, s);
    }
    const { beta1, beta2, epsilon } = this.config;
    updateLoops().adam({ beta1, beta2, epsilon, ...step }, p, g, s.m, s.v, from, to, copy);
  }
}

/** The constants of one Adam update (see Adam.begin). */
export interface AdamStep {
  rate: number;
  invC2: number;
}
