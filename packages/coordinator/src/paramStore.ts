import { GanError, type Phase } from '@ganfleet/shared/wire';
import { type ModelPreset, type ParamArrays, type SumTerm, batchNormSums, meanOfTerms, poolBatchNormSums, specsOf } from '@ganfleet/shared/model';
import { Adam, type AdamConfig, type AdamStep } from './adam.js';
import { type Aggregation, MAX_COMBINED_GRADIENT, robustAggregate } from './aggregation.js';
import { GeneratorAverage } from './generatorAverage.js';

/**
 * One worker's (or micro-batch's, or relay's) contribution to a round, as terms of the round's
 * exact sums: a worker's mean gradient weighted by its samples, a relay's sums with weight 1.
 */
export interface Contribution {
  samples: number;
  /** Mean loss over its samples. */
  loss: number;
  grads: ReadonlyMap<string, SumTerm>;
  /** Batch-norm sums per layer (see batchNormSums; G rounds). */
  stats?: ReadonlyMap<string, SumTerm>;
}

/** What one batch computed (a worker's reply, a micro-batch), as a contribution. */
export function batchContribution(batch: {
  samples: number;
  loss: number;
  grads: ReadonlyMap<string, Float32Array>;
  stats?: ReadonlyMap<string, Float32Array>;
}): Contribution {
  const { samples, loss } = batch;
  const grads = new Map([...batch.grads].map(([name, values]) => [name, { values, weight: samples }]));
  const stats = batch.stats && batch.stats.size > 0 ? new Map([...batch.stats].map(([layer, s]) => [layer, batchNormSums(samples, s)])) : undefined;
  return { samples, loss, grads, ...(stats ? { stats } : {}) };
}

/** How contributions are combined: the aggregation, and for `trimmed-mean` how many values are cut at each end. */
export interface AggregationSettings {
  mode: Aggregation;
  trim: number;
}

/** A round applied but for its Adam step, which is carried out value by value as the values are read (ParamStore.copySettled, settled). */
interface PendingStep {
  phase: Phase;
  step: AdamStep;
  /** G's Adam t, for the generator's average. */
  t: number;
  grads: ReadonlyMap<string, Float32Array>;
  /** The parameters not yet wholly updated, and how many of their leading values are. */
  done: Map<string, number>;
  /** Time spent on it so far. */
  ms: number;
}

/**
 * All parameters of G and D, one Adam per network, the averaged generator, and a version per
 * parameter so each worker is sent only what changed since it last synchronised. A round's
 * combined gradient is formed and checked first; one that is not finite, or too large for Adam's
 * state to stay finite, is refused and nothing changes. Its Adam step is then carried out when the
 * values are next read: piece by piece through copySettled(), which writes them into the next
 * round's outgoing body (UpdateBroadcast), so that sending overlaps Adam; all at once on any other read (`params`,
 * `adam`, `average`), so that nothing else ever sees a half-applied step.
 */
export class ParamStore {
  /** Bumped by every applied update; a parameter remembers the version that last changed it. */
  version = 0;
  /** How long the last completed Adam step took (of G or D, with the average's update). */
  adamMs = 0;
  private readonly values: ParamArrays;
  private readonly adams: Record<Phase, Adam>;
  private readonly generatorAverage: GeneratorAverage | undefined;
  private pending: PendingStep | undefined;
  private readonly changedAt = new Map<string, number>();
  /** The round's combined gradient per parameter, and its float64 sums. */
  private readonly combined = new Map<string, Float32Array>();
  private readonly sums = new Map<string, Float64Array>();

  constructor(
    readonly preset: ModelPreset,
    params: ParamArrays,
    adam: AdamConfig,
    /** Momentum of the batch-norm moving statistics (moving = m * moving + (1 - m) * batch). */
    readonly bnMomentum = 0.9,
    /** The generator's weight average: its decay (0 keeps none) and warm-up horizon. */
    ema: { decay: number; horizon: number } = { decay: 0, horizon: 1 },
    readonly aggregation: AggregationSettings = { mode: 'mean', trim: 1 },
  ) {
    this.values = params;
    this.generatorAverage = ema.decay > 0 ? new GeneratorAverage(preset, params, ema.decay, ema.horizon) : undefined;
    const forNetwork = (g: Phase): AdamConfig => ({ ...adam, learningRate: adam.networkLearningRates?.[g] ?? adam.learningRate });
    this.adams = { G: new Adam(forNetwork('G')), D: new Adam(forNetwork('D')) };
    for (const name of params.keys()) this.changedAt.set(name, 0);
  }

  /** All parameters, with every applied round's Adam step carried out. */
  get params(): ParamArrays {
    this.settleAll();
    return this.values;
  }

  /** One Adam per network, with every applied round's step carried out. */
  get adam(): Record<Phase, Adam> {
    this.settleAll();
    return this.adams;
  }

  /** The moving average of G's weights (absent when its decay is 0), with every applied round folded in. */
  get average(): GeneratorAverage | undefined {
    this.settleAll();
    return this.generatorAverage;
  }

  /**
   * Parameter `name` with at least its first `end` values final: the pending Adam step (and the
   * average's update) carried out that far. The rest may still change: read no further than `end`.
   */
  settled(name: string, end: number): Float32Array {
    return this.advance(name, end);
  }

  /**
   * Values [from, to) of parameter `name`, final (as settled gives them), written into `into`
   * (to - from values): those the pending Adam step computes now go there in the same pass, which
   * saves the update's body a read of the parameters.
   */
  copySettled(name: string, from: number, to: number, into: Float32Array): void {
    const p = this.advance(name, from);
    const done = Math.min(Math.max(this.pending?.done.get(name) ?? to, from), to);
    into.set(p.subarray(from, done));
    if (done < to) this.advance(name, to, into.subarray(done - from));
  }

  /** settled(), writing the values it computes into `copy` too (as many as it computes). */
  private advance(name: string, end: number, copy?: Float32Array): Float32Array {
    const p = this.values.get(name);
    if (!p) throw new Error(`no parameter ${name}`);
    const u = this.pending;
    const from = u?.done.get(name);
    if (!u || from === undefined || from >= end) return p;
    const started = performance.now();
    const to = Math.min(end, p.length);
    this.adams[u.phase].update(u.step, name, p, u.grads.get(name) as Float32Array, from, to, copy);
    if (u.phase === 'G') this.generatorAverage?.fold(name, p, u.t, from, to);
    if (to < p.length) u.done.set(name, to);
    else u.done.delete(name);
    u.ms += performance.now() - started;
    if (u.done.size === 0) {
      this.adamMs = u.ms;
      this.pending = undefined;
    }
    return p;
  }

  private settleAll(): void {
    for (const name of this.pending?.done.keys() ?? []) this.settled(name, Infinity);
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
   * the batch-norm statistics (G) and leaves the phase's Adam step, with the generator's average,
   * pending (see settled). Throws NON_FINITE, with nothing changed, if the update would make any
   * parameter or moment non-finite.
   */
  apply(phase: Phase, contributions: readonly Contribution[], lrScale = 1): { loss: number; samples: number } {
    // The scratch arrays below hold the pending step's gradients.
    this.settleAll();
    const total = contributions.reduce((n, c) => n + c.samples, 0);
    if (total <= 0) throw new Error('cannot apply a round without samples');
    const { mode, trim } = this.aggregation;
    // Every combined gradient is formed and checked before anything changes.
    const grads = new Map<string, Float32Array>();
    for (const spec of specsOf(this.preset, phase)) {
      const n = (this.values.get(spec.name) as Float32Array).length;
      const terms = contributions.map((c) => {
        const g = c.grads.get(spec.name);
        if (!g || g.values.length !== n) throw new Error(`contribution lacks gradient ${spec.name}`);
        return g;
      });
      const out = this.scratch(this.combined, spec.name, n, Float32Array);
      const ok =
        mode === 'mean' || terms.length < 3
          ? meanOfTerms(terms, total, out, MAX_COMBINED_GRADIENT, this.scratch(this.sums, spec.name, n, Float64Array))
          : robustAggregate(mode, terms.map(batchGradient), out, trim);
      if (!ok)
        throw new GanError('NON_FINITE', `round not applied: the combined ${phase} gradient of ${spec.name} is not finite or beyond ±${MAX_COMBINED_GRADIENT}`);
      grads.set(spec.name, out);
    }
    const adam = this.adams[phase];
    const step = adam.begin(lrScale);
    this.pending = { phase, step, t: adam.t, grads, done: new Map([...grads.keys()].map((name) => [name, 0])), ms: 0 };
    this.version += 1;
    for (const name of grads.keys()) this.changedAt.set(name, this.version);
    if (phase === 'G') this.applyBatchNormStats(contributions);
    const loss = contributions.reduce((s, c) => s + c.samples * c.loss, 0) / total;
    return { loss, samples: total };
  }

  /** A reusable array per parameter: a fresh one every round would cost page faults each time. */
  private scratch<A extends Float32Array | Float64Array>(pool: Map<string, A>, name: string, length: number, make: new (n: number) => A): A {
    let a = pool.get(name);
    if (!a) {
      a = new make(length);
      pool.set(name, a);
    }
    return a;
  }

  /**
   * Inference statistics of the raw generator: an exponential moving average of each G round's
   * statistics pooled over all workers' batches (exact pooled mean and biased variance of the
   * union of the batches, as if one big batch had been normalised).
   */
  private applyBatchNormStats(contributions: readonly Contribution[]): void {
    for (const bn of this.preset.batchNorms) {
      const mm = this.values.get(bn.movingMean);
      const mv = this.values.get(bn.movingVariance);
      if (!mm || !mv) throw new Error(`missing moving statistics of ${bn.layer}`);
      const total = contributions.reduce((n, c) => n + c.samples, 0);
      const terms = contributions.map((c) => {
        const term = c.stats?.get(bn.layer);
        if (!term || term.values.length !== 2 * mm.length) throw new Error(`contribution lacks batch-norm sums of ${bn.layer}`);
        return term;
      });
      const pooled = poolBatchNormSums(terms, mm.length, total);
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

/** A worker's own gradient, for the coordinate-wise modes (which relays, sending sums, cannot join). */
function batchGradient(term: SumTerm): Float32Array {
  if (!(term.values instanceof Float32Array) || term.rest)
    throw new GanError('CONFIG_INVALID', "trimmed-mean and median need every worker's own gradients: no relays");
  return term.values;
}
