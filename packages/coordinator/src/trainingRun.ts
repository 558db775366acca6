import { BatchDispenser, type Group, type ModelPreset, initParams, mixSeed } from '@ganfleet/shared';
import type { AdamConfig } from './adam.js';
import { type Contribution, ParamStore } from './paramStore.js';
import { Schedule, type ScheduleConfig } from './schedule.js';

export interface RunConfig {
  preset: ModelPreset;
  seed: number;
  /** Per worker (per micro-batch) batch size. */
  batchSize: number;
  schedule: ScheduleConfig;
  adam: AdamConfig;
  bnMomentum: number;
  /** Training-set size, for the batch dispenser. */
  datasetCount: number;
}

/** What one slot (worker or micro-batch) computes in a round. */
export interface SlotTask {
  round: number;
  phase: Group;
  batchSize: number;
  /** Seeds this slot's noise. */
  seed: number;
  /** Training-set indices of the real batch (D rounds only). */
  indices?: Uint32Array;
}

export interface RoundResult {
  round: number;
  phase: Group;
  iteration: number;
  loss: number;
  samples: number;
  applyMs: number;
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
  private shards: number;

  constructor(readonly config: RunConfig) {
    this.store = new ParamStore(config.preset, initParams(config.preset, config.seed), config.adam, config.bnMomentum);
    this.schedule = new Schedule(config.schedule);
    this.shards = 1;
    this.dispenser = new BatchDispenser({ count: config.datasetCount, seed: config.seed, shards: this.shards });
  }

  get done(): boolean {
    return this.round >= this.schedule.totalRounds;
  }

  get phase(): Group {
    return this.schedule.phaseOf(this.round);
  }

  get iteration(): number {
    return this.schedule.iterationsAfter(this.round);
  }

  /** Tasks of the current round for `slots` participants; re-shards the data if their number changed. */
  plan(slots: number): SlotTask[] {
    if (slots < 1) throw new Error('a round needs at least one slot');
    const phase = this.phase;
    if (phase === 'D' && slots !== this.shards) {
      this.dispenser.reshard(slots);
      this.shards = slots;
    }
    return Array.from({ length: slots }, (_, slot) => ({
      round: this.round,
      phase,
      batchSize: this.config.batchSize,
      seed: mixSeed(this.config.seed, this.round, slot),
      ...(phase === 'D' ? { indices: this.dispenser.next(slot, this.config.batchSize).indices } : {}),
    }));
  }

  /** Applies the round from the slots' contributions, in slot order, and advances. */
  complete(contributions: readonly Contribution[]): RoundResult {
    const started = performance.now();
    const phase = this.phase;
    const { loss, samples } = this.store.apply(phase, contributions);
    const round = this.round;
    this.round += 1;
    return { round, phase, iteration: this.iteration, loss, samples, applyMs: performance.now() - started };
  }
}
