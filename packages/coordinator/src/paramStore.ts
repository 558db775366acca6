import { type Group, type ModelPreset, type ParamArrays, poolBatchNormStats, specsOf } from '@ganfleet/shared/model';
import { Adam, type AdamConfig } from './adam.js';
import { GeneratorAverage } from './generatorAverage.js';

/** One worker's (or micro-batch's) contribution to a round. */
export interface Contribution {
  samples: number;
  loss: number;
  grads: ReadonlyMap<string, Float32Array>;
  /** Batch-norm batch statistics per layer: [mean..., variance...] (G rounds). */
  stats?: ReadonlyMap<string, Float32Array>;
}

/**
 * All parameters of G and D, one Adam per network, the averaged generator, and a version per
 * parameter so each worker is sent only what changed since it last synchronised.
 */
export class ParamStore {
  readonly adam: Record<Group, Adam>;
  /** The moving average of G's weights (absent when its decay is 0). */
  readonly average: GeneratorAverage | undefined;
  /** Bumped by every applied update; a parameter remembers the version that last changed it. */
  version = 0;
  private readonly changedAt = new Map<string, number>();
  private readonly gradScratch = new Map<string, Float32Array>();

  constructor(
    readonly preset: ModelPreset,
    readonly params: ParamArrays,
    adam: AdamConfig,
    /** Momentum of the batch-norm moving statistics (moving = m * moving + (1 - m) * batch). */
    readonly bnMomentum = 0.9,
    /** Decay of the generator's weight average; 0 keeps none. */
    emaDecay = 0,
  ) {
    this.average = emaDecay > 0 ? new GeneratorAverage(preset, params, emaDecay) : undefined;
    const forNetwork = (g: Group): AdamConfig => ({ ...adam, learningRate: adam.networkLearningRates?.[g] ?? adam.learningRate });
    this.adam = { G: new Adam(forNetwork('G')), D: new Adam(forNetwork('D')) };
    for (const name of params.keys()) this.changedAt.set(name, 0);
  }

  /** After a restore every replica is stale: workers must receive everything again. */
  markAllChanged(): void {
    this.version += 1;
    for (const name of this.changedAt.keys()) this.changedAt.set(name, this.version);
  }

  /** The averaged gradient of `name`, reused every round (a fresh 13 MB array costs page faults each time). */
  private scratch(name: string): Float32Array {
    let buf = this.gradScratch.get(name);
    if (!buf) {
      buf = new Float32Array(this.params.get(name)?.length ?? 0);
      this.gradScratch.set(name, buf);
    }
    return buf;
  }

  /** Names of the parameters changed after `version` (all of them for a new worker: version -1). */
  changedSince(version: number): string[] {
    return this.preset.params.map((s) => s.name).filter((n) => (this.changedAt.get(n) ?? 0) > version);
  }

  /**
   * Averages contributions weighted by samples, summing in the given (slot) order so the
   * result is reproducible, then applies the group's Adam, the batch-norm statistics and (G)
   * the generator's average.
   */
  apply(group: Group, contributions: readonly Contribution[], lrScale = 1): { loss: number; samples: number } {
    const total = contributions.reduce((n, c) => n + c.samples, 0);
    if (total <= 0) throw new Error('cannot apply a round without samples');
    const grads = new Map<string, Float32Array>();
    for (const spec of specsOf(this.preset, group)) {
      const only = contributions.length === 1 ? contributions[0]?.grads.get(spec.name) : undefined;
      if (only) {
        // The average of one part is that part: skip a pass over the parameters.
        grads.set(spec.name, only);
        continue;
      }
      const acc = this.scratch(spec.name);
      acc.fill(0);
      for (const c of contributions) {
        const g = c.grads.get(spec.name);
        if (!g || g.length !== acc.length) throw new Error(`contribution lacks gradient ${spec.name}`);
        for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] as number) + c.samples * (g[i] as number);
      }
      for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] as number) / total;
      grads.set(spec.name, acc);
    }
    this.adam[group].apply(this.params, grads, lrScale);
    this.version += 1;
    for (const name of grads.keys()) this.changedAt.set(name, this.version);
    if (group === 'G') {
      this.applyBatchNormStats(contributions);
      this.average?.update(this.params, this.adam.G.t);
    }
    const loss = contributions.reduce((s, c) => s + c.samples * c.loss, 0) / total;
    return { loss, samples: total };
  }

  /**
   * Inference statistics of the saved generator: an exponential moving average of each G
   * round's statistics pooled over all workers' batches (exact pooled mean and biased
   * variance of the union of the batches, as if one big batch had been normalised).
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
