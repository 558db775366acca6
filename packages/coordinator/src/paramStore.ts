import { GanError, type Phase } from '@ganfleet/shared/wire';
import { type ModelPreset, type ParamArrays, poolBatchNormStats, specsOf } from '@ganfleet/shared/model';
import { Adam, type AdamConfig, type AdamTarget, adamStep } from './adam.js';
import { type Aggregation, robustAggregate } from './aggregation.js';
import { GeneratorAverage } from './generatorAverage.js';

/** One worker's (or micro-batch's) contribution to a round. */
export interface Contribution {
  samples: number;
  loss: number;
  grads: ReadonlyMap<string, Float32Array>;
  /** Batch-norm batch statistics per layer: [mean..., variance...] (G rounds). */
  stats?: ReadonlyMap<string, Float32Array>;
}

/** How contributions are combined: the aggregation, and for `trimmed-mean` how many values are cut at each end. */
export interface AggregationSettings {
  mode: Aggregation;
  trim: number;
}

/**
 * All parameters of G and D, one Adam per network, the averaged generator, and a version per
 * parameter so each worker is sent only what changed since it last synchronised. A round's
 * update is staged into spare arrays and committed (the arrays swapped) only when every new
 * parameter and moment is finite: a round that would poison the state leaves it untouched.
 */
export class ParamStore {
  readonly adam: Record<Phase, Adam>;
  /** The moving average of G's weights (absent when its decay is 0). */
  readonly average: GeneratorAverage | undefined;
  /** Bumped by every applied update; a parameter remembers the version that last changed it. */
  version = 0;
  private readonly changedAt = new Map<string, number>();
  /** Per parameter, the arrays the next update is staged in (swapped with the live ones on commit). */
  private readonly spare = new Map<string, AdamTarget>();
  /** The aggregated gradient of the robust modes, per parameter, reused every round. */
  private readonly aggregated = new Map<string, Float32Array>();

  constructor(
    readonly preset: ModelPreset,
    readonly params: ParamArrays,
    adam: AdamConfig,
    /** Momentum of the batch-norm moving statistics (moving = m * moving + (1 - m) * batch). */
    readonly bnMomentum = 0.9,
    /** Decay of the generator's weight average; 0 keeps none. */
    emaDecay = 0,
    readonly aggregation: AggregationSettings = { mode: 'mean', trim: 1 },
  ) {
    this.average = emaDecay > 0 ? new GeneratorAverage(preset, params, emaDecay) : undefined;
    const forNetwork = (g: Phase): AdamConfig => ({ ...adam, learningRate: adam.networkLearningRates?.[g] ?? adam.learningRate });
    this.adam = { G: new Adam(forNetwork('G')), D: new Adam(forNetwork('D')) };
    for (const name of params.keys()) this.changedAt.set(name, 0);
  }

  /** After a restore every replica is stale: workers must receive everything again. */
  markAllChanged(): void {
    this.version += 1;
    for (const name of this.changedAt.keys()) this.changedAt.set(name, this.version);
  }

  /** Names of the parameters changed after `version` (all of them for a new worker: version -1). */
  changedSince(version: number): string[] {
    return this.preset.params.map((s) => s.name).filter((n) => (this.changedAt.get(n) ?? 0) > version);
  }

  /**
   * Combines the contributions (in the given, slot, order, so the result is reproducible), applies
   * the phase's Adam, then the batch-norm statistics and (G) the generator's average. Throws
   * NON_FINITE, with nothing changed, if the update would make any parameter or moment non-finite.
   */
  apply(phase: Phase, contributions: readonly Contribution[], lrScale = 1): { loss: number; samples: number } {
    const total = contributions.reduce((n, c) => n + c.samples, 0);
    if (total <= 0) throw new Error('cannot apply a round without samples');
    const adam = this.adam[phase];
    const k = adam.nextStep(lrScale);
    const weights = contributions.map((c) => c.samples);
    const staged: { name: string; target: AdamTarget }[] = [];
    for (const spec of specsOf(this.preset, phase)) {
      const p = this.params.get(spec.name) as Float32Array;
      const parts = contributions.map((c) => {
        const g = c.grads.get(spec.name);
        if (!g || g.length !== p.length) throw new Error(`contribution lacks gradient ${spec.name}`);
        return g;
      });
      const slots = adam.slotsFor(spec.name, p.length);
      const target = this.spareFor(spec.name, p.length);
      const { mode, trim } = this.aggregation;
      const finite =
        mode === 'mean' || parts.length < 3
          ? adamStep(k, parts, weights, total, p, slots, target)
          : adamStep(k, [this.robust(spec.name, mode, parts, trim)], [1], 1, p, slots, target);
      if (!finite) throw new GanError('NON_FINITE', `round not applied: the ${phase} update would make ${spec.name} non-finite`);
      staged.push({ name: spec.name, target });
    }
    this.commit(adam, staged);
    if (phase === 'G') {
      this.applyBatchNormStats(contributions);
      this.average?.update(this.params, this.adam.G.t);
    }
    const loss = contributions.reduce((s, c) => s + c.samples * c.loss, 0) / total;
    return { loss, samples: total };
  }

  /** Swaps the staged arrays in: new parameters and moments become live, the old ones the next spares. */
  private commit(adam: Adam, staged: readonly { name: string; target: AdamTarget }[]): void {
    this.version += 1;
    for (const { name, target } of staged) {
      const slots = adam.slotsFor(name, target.p.length);
      const old = { p: this.params.get(name) as Float32Array, m: slots.m, v: slots.v };
      this.params.set(name, target.p);
      slots.m = target.m;
      slots.v = target.v;
      this.spare.set(name, old);
      this.changedAt.set(name, this.version);
    }
    adam.t += 1;
  }

  private spareFor(name: string, length: number): AdamTarget {
    let s = this.spare.get(name);
    if (!s) {
      s = { p: new Float32Array(length), m: new Float32Array(length), v: new Float32Array(length) };
      this.spare.set(name, s);
    }
    return s;
  }

  private robust(name: string, mode: Exclude<Aggregation, 'mean'>, parts: readonly Float32Array[], trim: number): Float32Array {
    let out = this.aggregated.get(name);
    if (!out) {
      out = new Float32Array((parts[0] as Float32Array).length);
      this.aggregated.set(name, out);
    }
    robustAggregate(mode, parts, out, trim);
    return out;
  }

  /**
   * Inference statistics of the raw generator: an exponential moving average of each G round's
   * statistics pooled over all workers' batches (exact pooled mean and biased variance of the
   * union of the batches, as if one big batch had been normalised).
   */
  private applyBatchNormStats(contributions: readonly Contribution[]): void {
    for (const bn of this.preset.batchNorms) {
      const mm = this.params.get(bn.movingMean);
      const mv = this.params.get(bn.movingVariance);
      if (!mm || !mv) throw new Error(`missing moving statistics of ${bn.layer}`);
      const pooled = poolBatchNormStats(
        contributions.map((c) => ({ samples: c.samples, stats: c.stats?.get(bn.layer) })),
        mm.length,
      );
      const m = this.bnMomentum;
      for (let i = 0; i < mm.length; i++) {
        mm[i] = m * (mm[i] as number) + (1 - m) * (pooled[i] as number);
        mv[i] = m * (mv[i] as number) + (1 - m) * (pooled[mm.length + i] as number);
      }
      this.changedAt.set(bn.movingMean, this.version);
      this.changedAt.set(bn.movingVariance, this.version);
    }
  }
}
