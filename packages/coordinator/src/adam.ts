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

/** One update's constants: p -= step · m / (sqrt(v · invC2) + eps), bias corrections folded in. */
export interface AdamStep {
  b1: number;
  b2: number;
  a1: number;
  a2: number;
  step: number;
  invC2: number;
  eps: number;
}

/** Where one tensor's update is written: the new parameters and moments (may be the old arrays, in place). */
export interface AdamTarget {
  p: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

/**
 * Adam over plain float32 arrays, the same update rule as tf.train.adam (bias-corrected moments,
 * epsilon added to the square root). Runs on the coordinator without any TensorFlow.js backend,
 * so it is identical wherever the coordinator runs. ParamStore stages an update into spare
 * arrays and commits it only if everything came out finite; `apply` updates in place.
 */
export class Adam {
  /** Number of updates applied so far (the `t` of the bias correction). */
  t = 0;
  readonly slots = new Map<string, AdamSlots>();

  constructor(readonly config: AdamConfig) {}

  /** The constants of update number t + 1, with the learning rate scaled by `lrScale` (a decay schedule). */
  nextStep(lrScale = 1): AdamStep {
    const { beta1: b1, beta2: b2, epsilon: eps } = this.config;
    const t = this.t + 1;
    return { b1, b2, a1: 1 - b1, a2: 1 - b2, step: (this.config.learningRate * lrScale) / (1 - b1 ** t), invC2: 1 / (1 - b2 ** t), eps };
  }

  /** The moments of `name`, zeros before its first update. */
  slotsFor(name: string, length: number): AdamSlots {
    let s = this.slots.get(name);
    if (!s) {
      s = { m: new Float32Array(length), v: new Float32Array(length) };
      this.slots.set(name, s);
    }
    return s;
  }

  /** One update of every parameter in `grads`, in place. */
  apply(params: Map<string, Float32Array>, grads: ReadonlyMap<string, Float32Array>, lrScale = 1): void {
    const k = this.nextStep(lrScale);
    for (const [name, g] of grads) {
      const p = params.get(name);
      if (!p || p.length !== g.length) throw new Error(`Adam: no parameter ${name} of length ${g.length}`);
      const s = this.slotsFor(name, g.length);
      adamStep(k, [g], [1], 1, p, s, { p, m: s.m, v: s.v });
    }
    this.t += 1;
  }
}

/**
 * Adam on one tensor from the weighted mean of one or more gradients, in one pass: the mean is
 * summed in float64 in the parts' order (so it cannot overflow, and N workers equal N in-process
 * micro-batches bit for bit), rounded to float32 as a stored gradient would be, and used at once.
 * One part of weight 1 is that gradient exactly. Returns whether every value written is finite.
 */
export function adamStep(
  k: AdamStep,
  parts: readonly Float32Array[],
  weights: readonly number[],
  total: number,
  p: Float32Array,
  s: AdamSlots,
  out: AdamTarget,
): boolean {
  const { b1, b2, a1, a2, step, invC2, eps } = k;
  const { m, v } = s;
  const n = parts.length;
  let check = 0;
  for (let i = 0; i < p.length; i++) {
    let acc = 0;
    for (let j = 0; j < n; j++) acc += (weights[j] as number) * ((parts[j] as Float32Array)[i] as number);
    const gi = Math.fround(acc / total);
    const mi = b1 * (m[i] as number) + a1 * gi;
    const vi = b2 * (v[i] as number) + a2 * gi * gi;
    const pi = (p[i] as number) - (step * mi) / (Math.sqrt(vi * invC2) + eps);
    const mf = Math.fround(mi);
    const vf = Math.fround(vi);
    const pf = Math.fround(pi);
    out.m[i] = mf;
    out.v[i] = vf;
    out.p[i] = pf;
    check += mf * 0 + vf * 0 + pf * 0;
  }
  return check === 0;
}
