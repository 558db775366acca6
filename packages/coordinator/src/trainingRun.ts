import { BatchDispenser, type DispenserState, mixSeed } from '@ganfleet/shared/data';
import { type ModelPreset, initParams, startFromData } from '@ganfleet/shared/model';
import type { Phase } from '@ganfleet/shared/wire';
import { type Contribution, ParamStore } from './paramStore.js';
import { Schedule } from './schedule.js';
import type { TrainingSettings } from './settings.js';

/** What a run needs to know of its training set. */
export interface RunData {
  count: number;
  /** The training images' per-pixel mean, for G's starting output bias (startFromData). */
  meanImage: Float32Array;
}

/** What one slot (worker or micro-batch) computes in a round. */
export interface SlotTask {
  round: number;
  phase: Phase;
  batchSize: number;
  /** Seeds this slot's noise. */
  seed: number;
  /** Training-set indices of the real batch (D rounds only). */
  indices?: Uint32Array;
}

export interface RunSnapshot {
  round: number;
  params: ReadonlyMap<string, Float32Array>;
  adam: Record<Phase, { t: number; slots: ReadonlyMap<string, { m: Float32Array; v: Float32Array }> }>;
  /** The averaged generator's weights (absent when the run keeps no average). */
  average?: ReadonlyMap<string, Float32Array>;
  dispenser: DispenserState;
}

export interface RoundResult {
  round: number;
  phase: Phase;
  iteration: number;
  loss: number;
  samples: number;
  /** Combining and checking the contributions; the Adam step follows when the parameters are next read. */
  applyMs: number;
  /** The previous round's Adam step (with the generator average's update), carried out as this round's parameters were sent or read. */
  adamMs: number;
}

/**
 * The training state machine shared by the in-process trainer and the coordinator: which
 * round comes next, what each slot computes in it, and how results are combined. Running the
 * same plan in N processes or in one process as N micro-batches gives the same parameters.
 */
export class TrainingRun {
  readonly store: ParamStore;
  readonly schedule: Schedule;
  round = 0;
  private dispenser: BatchDispenser;

  constructor(
    readonly settings: TrainingSettings,
    readonly preset: ModelPreset,
    data: RunData,
  ) {
    const params = initParams(preset, settings.seed);
    startFromData(preset, params, data.meanImage);
    this.store = new ParamStore(
      preset,
      params,
      settings.adam,
      settings.bnMomentum,
      { decay: settings.emaDecay, horizon: settings.emaHorizon },
      { mode: settings.aggregate, trim: settings.trim },
    );
    this.schedule = new Schedule(settings.schedule);
    this.dispenser = new BatchDispenser({ count: data.count, seed: settings.seed, shards: 1 });
  }

  /** Everything needed to continue exactly where this run is (see checkpoint.ts). */
  snapshot(): RunSnapshot {
    const adam = (g: Phase) => ({ t: this.store.adam[g].t, slots: new Map(this.store.adam[g].slots) });
    const average = this.store.average?.values;
    return {
      round: this.round,
      params: this.store.params,
      adam: { G: adam('G'), D: adam('D') },
      ...(average ? { average } : {}),
      dispenser: this.dispenser.state(),
    };
  }

  /** Continues from a snapshot taken by a run with the same configuration. */
  restore(s: RunSnapshot): void {
    for (const [name, values] of s.params) {
      const target = this.store.params.get(name);
      if (!target || target.length !== values.length) throw new Error(`snapshot parameter ${name} does not fit this model`);
      target.set(values);
    }
    for (const g of ['G', 'D'] as const) {
      this.store.adam[g].t = s.adam[g].t;
      this.store.adam[g].slots.clear();
      for (const [name, slot] of s.adam[g].slots) this.store.adam[g].slots.set(name, { m: slot.m.slice(), v: slot.v.slice() });
    }
    const average = this.store.average;
    if (average) {
      // A checkpoint of a run without an average: start averaging from the restored weights.
      average.restore(s.average ?? this.store.params);
    }
    this.dispenser = BatchDispenser.fromState(s.dispenser);
    this.round = s.round;
    this.store.markAllChanged();
  }

  get done(): boolean {
    return this.round >= this.schedule.totalRounds;
  }

  get phase(): Phase {
    return this.schedule.phaseOf(this.round);
  }

  get iteration(): number {
    return this.schedule.iterationsAfter(this.round);
  }

  /** Tasks of the current round for `slots` participants; re-shards the data if their number changed. */
  plan(slots: number): SlotTask[] {
    if (slots < 1) throw new Error('a round needs at least one slot');
    const phase = this.phase;
    if (phase === 'D' && slots !== this.dispenser.shards) this.dispenser.reshard(slots);
    return Array.from({ length: slots }, (_, slot) => ({
      round: this.round,
      phase,
      batchSize: this.settings.batchSize,
      seed: mixSeed(this.settings.seed, this.round, slot),
      ...(phase === 'D' ? { indices: this.dispenser.next(slot, this.settings.batchSize).indices } : {}),
    }));
  }

  /** Applies the round from the slots' contributions, in slot order, and advances. */
  complete(contributions: readonly Contribution[]): RoundResult {
    const started = performance.now();
    const phase = this.phase;
    const { loss, samples } = this.store.apply(phase, contributions, this.schedule.lrScale(this.round));
    const round = this.round;
    this.round += 1;
    return { round, phase, iteration: this.iteration, loss, samples, applyMs: performance.now() - started, adamMs: this.store.adamMs };
  }
}
