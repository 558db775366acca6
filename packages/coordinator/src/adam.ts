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
    this.t += 1;
    const { beta1: b1, beta2: b2, epsilon: eps } = this.config;
    // Bias corrections folded into two constants: p -= (lr / c1) * m / (sqrt(v / c2) + eps).
    const step = (this.config.learningRate * lrScale) / (1 - b1 ** this.t);
    const invC2 = 1 / (1 - b2 ** this.t);
    const a1 = 1 - b1;
    const a2 = 1 - b2;
    for (const [name, g] of grads) {
      const p = params.get(name);
      if (!p || p.length !== g.length) throw new Error(`Adam: no parameter ${name} of length ${g.length}`);
      let s = this.slots.get(name);
      if (!s) {
        s = { m: new Float32Array(g.length), v: new Float32Array(g.length) };
        this.slots.set(name, s);
      }
      const { m, v } = s;
      for (let i = 0; i < g.length; i++) {
        const gi = g[i] as number;
        const mi = b1 * (m[i] as number) + a1 * gi;
        const vi = b2 * (v[i] as number) + a2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = (p[i] as number) - (step * mi) / (Math.sqrt(vi * invC2) + eps);
      }
    }
  }
}
