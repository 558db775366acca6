import { type ModelPreset, type ParamArrays, specsOf, updateLoops } from '@ganfleet/shared/model';

/**
 * An exponential moving average of the generator's trainable weights (Yazıcı et al. 2019,
 * StyleGAN's G_ema). Training never reads it; it is the generator a run writes, serves and
 * scores. Its batch-norm inference statistics are not averaged: they are recomputed for the
 * averaged weights (recalibrateBatchNorm) whenever the generator is used.
 */
export class GeneratorAverage {
  /** The averaged values by parameter name (G's trainable parameters only). */
  readonly values: ParamArrays;

  constructor(
    preset: ModelPreset,
    params: ReadonlyMap<string, Float32Array>,
    /** The decay after warm-up, in (0, 1). */
    readonly decay: number,
    /** The fraction of the G updates so far that the average spans during warm-up, in (0, 1]. */
    readonly horizon: number,
  ) {
    if (!(decay > 0 && decay < 1)) throw new Error(`EMA decay must be in (0, 1), got ${decay}`);
    if (!(horizon > 0 && horizon <= 1)) throw new Error(`EMA horizon must be in (0, 1], got ${horizon}`);
    this.values = new Map(specsOf(preset, 'G').map((s) => [s.name, (params.get(s.name) as Float32Array).slice()]));
  }

  /**
   * The decay at the t-th G update (t from 1): min(decay, (1 + t) / (1 + 1/horizon + t)), whose
   * average spans about the last `horizon` of the updates so far, so that it forgets the random
   * initialisation and the early, poor generators at the pace the run improves.
   */
  decayAt(t: number): number {
    return Math.min(this.decay, (1 + t) / (1 + 1 / this.horizon + t));
  }

  /** Folds in the parameters just produced by the t-th G update. */
  update(params: ReadonlyMap<string, Float32Array>, t: number): void {
    for (const [name, avg] of this.values) this.fold(name, params.get(name) as Float32Array, t, 0, avg.length);
  }

  /** Folds values [from, to) of parameter `name`, just produced by the t-th G update, into its average (update() in pieces). */
  fold(name: string, p: Float32Array, t: number, from: number, to: number): void {
    const avg = this.values.get(name);
    if (!avg) return;
    updateLoops().emaFold(avg, p, this.decayAt(t), from, to);
  }

  /** Replaces the averages with stored ones (resume). */
  restore(values: ReadonlyMap<string, Float32Array>): void {
    for (const [name, avg] of this.values) {
      const stored = values.get(name);
      if (!stored || stored.length !== avg.length) throw new Error(`stored average of ${name} does not fit this model`);
      avg.set(stored);
    }
  }
}
