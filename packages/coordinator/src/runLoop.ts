import { isGanError } from '@ganfleet/shared/wire';
import type { Logger } from '@ganfleet/shared/log';
import { type GeneratorArtifacts, type ModelPreset, generatorArtifacts } from '@ganfleet/shared/model';
import { type Checkpoint, writeCheckpoint } from './checkpoint.js';
import { RunEvents } from './events.js';
import type { Contribution } from './paramStore.js';
import { RunEvaluation, evalSummary } from './runEvaluation.js';
import { type GeneratorKind, RunGenerator } from './runGenerator.js';
import { RunOutputs } from './runOutputs.js';
import { type RunSettings, TRAINING_SETTINGS, type TrainingSettings } from './settings.js';
import { type RoundResult, type RunData, TrainingRun } from './trainingRun.js';

/** How a round's slots were computed, for its log line: by workers over the network, or locally. */
export interface SlotTiming {
  /** Slots (workers or micro-batches) that contributed. */
  slots: number;
  /** The slowest slot's own compute time. */
  computeMs: number;
  /** Network rounds only: from the first reply to the last, sending, bytes, the slowest worker, replies dropped. */
  waitMs?: number;
  broadcastMs?: number;
  bytesOut?: number;
  bytesIn?: number;
  /** Replies that came through shared memory (workers on the coordinator's machine). */
  viaSharedMemory?: number;
  slowest?: { worker: string; lagMs: number };
  /** Workers that missed the deadline. */
  dropped?: number;
  /** Replies refused by screening (their workers dropped). */
  refused?: number;
  /** The largest gradient-norm ratio among the replies used (the screen's measure; see ContributionScreen). */
  normRatio?: number;
  /** Slots planned for the round, and those whose contributions were used, in order. */
  planned?: number;
  used?: number[];
}

/** What the run logs and announces for every applied round. */
export interface RoundLog extends RoundResult, SlotTiming {
  roundMs: number;
}

/** A round's contributions, in slot order, and how they were computed. */
export interface ComputedRound {
  contributions: Contribution[];
  timing: SlotTiming;
}

/**
 * Computes the slots of the run's next round: in this process (LocalSlots) or on remote
 * workers (WorkerPool). It plans the round itself (run.plan), since only it knows how many
 * slots it has.
 */
export interface SlotComputer {
  /** The round's contributions; undefined when the round could not be completed and must be computed again. */
  computeRound(run: TrainingRun): Promise<ComputedRound | undefined>;
  /** Training is over: release whatever computed the slots. */
  finish(): void;
}

export type RunState = 'waiting' | 'training' | 'done';

/**
 * The one training loop, whoever computes the gradients: compute a round's slots, apply them,
 * then what follows a round (log line, sample grids, evaluation, checkpoints), and the run's
 * outputs at the end. The coordinator and the in-process trainer both run it.
 */
export class RunLoop {
  readonly run: TrainingRun;
  readonly events = new RunEvents();
  /** The generator this run offers (averaged by default). */
  readonly generators: RunGenerator;
  state: RunState = 'waiting';
  lastRound: RoundLog | undefined;
  private readonly outputs: RunOutputs | undefined;
  private readonly evaluation: RunEvaluation;
  private stopping = false;

  constructor(
    readonly settings: RunSettings,
    readonly preset: ModelPreset,
    data: RunData,
    resumed: Checkpoint | undefined,
    readonly runId: string,
    private readonly log: Logger,
  ) {
    this.run = new TrainingRun(settings, preset, data);
    if (resumed) this.run.restore(resumed.snapshot);
    this.generators = new RunGenerator(this.run);
    this.outputs = settings.out ? new RunOutputs(settings.out, preset, settings.seed) : undefined;
    this.evaluation = new RunEvaluation(preset, settings.seed, settings.eval, settings.dataDir);
  }

  get latestSamplesPath(): string | undefined {
    return this.outputs?.latestSamplesPath;
  }

  /** Trains to the end of the schedule (or until stop()); resolves once the outputs are written. */
  async train(slots: SlotComputer): Promise<TrainingRun> {
    const run = this.run;
    try {
      while (!run.done && !this.stopping) {
        const started = performance.now();
        const computed = await slots.computeRound(run);
        if (this.stopping) break;
        if (!computed) continue;
        this.state = 'training';
        const result = this.apply(computed.contributions);
        if (!result) continue;
        this.logRound({ ...result, ...computed.timing, roundMs: performance.now() - started });
        await this.afterRound(result);
      }
      if (this.stopping) return run;
      this.state = 'done';
      await this.finish();
      return run;
    } finally {
      slots.finish();
      await this.evaluation.dispose();
    }
  }

  /** The round applied, or undefined (state untouched, the round to be computed again) if it would have been non-finite. */
  private apply(contributions: Contribution[]): RoundResult | undefined {
    try {
      return this.run.complete(contributions);
    } catch (err) {
      if (!isGanError(err) || err.code !== 'NON_FINITE') throw err;
      this.log.error({ code: err.code, round: this.run.round }, err.message);
      this.events.emit('roundRejected', { round: this.run.round, reason: err.message });
      return undefined;
    }
  }

  /** Ends the loop after the round in progress; no outputs are written (checkpoint first to keep the state). */
  stop(): void {
    this.stopping = true;
  }

  get stopped(): boolean {
    return this.stopping;
  }

  /** Writes a checkpoint of the current round under `out`; resolves to its path (undefined without `out`). */
  async checkpoint(): Promise<string | undefined> {
    if (!this.settings.out) return undefined;
    const training = Object.fromEntries(TRAINING_SETTINGS.map((k) => [k, this.settings[k]])) as TrainingSettings;
    try {
      const path = await writeCheckpoint(this.settings.out, this.runId, this.run.snapshot(), training);
      this.log.info({ round: this.run.round, path }, 'checkpoint written');
      return path;
    } catch (err) {
      // Training goes on; the previous checkpoints stay the ones to resume from.
      this.log.error(
        { code: isGanError(err) ? err.code : 'INTERNAL', round: this.run.round },
        `checkpoint failed: ${err instanceof Error ? err.message : String(err)}`,
      );
      return undefined;
    }
  }

  /** The generator of the step in force now, as a LayersModel. */
  async generator(asked: GeneratorKind = 'averaged'): Promise<GeneratorArtifacts> {
    const kind = this.generators.kindOf(asked);
    const meta = {
      steps: this.run.iteration,
      runId: this.runId,
      seed: this.settings.seed,
      generator: kind,
      ...(kind === 'averaged' ? { emaDecay: this.settings.emaDecay, emaHorizon: this.settings.emaHorizon } : {}),
    };
    return generatorArtifacts(this.preset, await this.generators.params(kind), meta);
  }

  private async afterRound(result: RoundResult): Promise<void> {
    const { run, settings } = this;
    if (run.done) return;
    if (settings.checkpointEvery > 0 && run.round % settings.checkpointEvery === 0) await this.checkpoint();
    if (result.phase !== 'G') return;
    if (settings.sampleEvery > 0 && result.iteration % settings.sampleEvery === 0) await this.writeSamples();
    if (this.evaluation.due(result.iteration)) await this.evaluate();
  }

  private async finish(): Promise<void> {
    const step = this.run.iteration;
    await this.checkpoint();
    if (this.outputs) {
      await this.writeSamples();
      const generator = await this.saveGenerators(this.outputs);
      this.log.info({ step, generator }, 'training finished');
    } else this.log.info({ step }, 'training finished');
    if (this.evaluation.enabled) await this.evaluate();
    this.events.emit('finished', { step });
  }

  /** `generator/` (the averaged one, or raw without an average) and, with an average, `generator-raw/`. */
  private async saveGenerators(outputs: RunOutputs): Promise<string> {
    const dir = await outputs.saveGenerator(await this.generator('averaged'));
    if (this.run.store.average) await outputs.saveGenerator(await this.generator('raw'), true);
    return dir;
  }

  private async evaluate(): Promise<void> {
    const step = this.run.iteration;
    const summary = evalSummary(await this.evaluation.evaluate(await this.generators.params()));
    this.log.info({ step, ...summary }, 'eval');
    this.events.emit('evaluated', { step, ...summary });
  }

  private async writeSamples(): Promise<void> {
    if (!this.outputs) return;
    const step = this.run.iteration;
    const path = await this.outputs.writeSamples(await this.generators.params(), step);
    this.log.info({ step, path }, 'samples written');
    this.events.emit('samplesWritten', { step, path });
  }

  private logRound(entry: RoundLog): void {
    this.lastRound = entry;
    this.log.info({ ...entry, step: entry.iteration }, 'round');
    this.events.emit('round', entry);
  }
}
