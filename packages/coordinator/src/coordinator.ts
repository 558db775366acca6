import type { WebSocket } from 'ws';
import type { Hello } from '@ganfleet/shared/wire';
import type { Dataset } from '@ganfleet/shared/data';
import type { Logger } from '@ganfleet/shared/log';
import type { SharedMemoryCalls } from '@ganfleet/shared/backends';
import type { GeneratorArtifacts, ModelPreset } from '@ganfleet/shared/model';
import type { Checkpoint } from './checkpoint.js';
import type { RunEvents } from './events.js';
import type { GeneratorKind } from './runGenerator.js';
import { type RoundLog, RunLoop, type RunState } from './runLoop.js';
import type { RunData, TrainingRun } from './trainingRun.js';
import type { RunSettings } from './settings.js';
import { WorkerPool, type WorkerStatus } from './workerPool.js';

export interface CoordinatorStatus {
  runId: string;
  preset: string;
  round: number;
  totalRounds: number;
  step: number;
  steps: number;
  phase: 'D' | 'G';
  state: RunState;
  minWorkers: number;
  workers: WorkerStatus[];
  lastRound?: RoundLog;
}

/** A distributed run: the run loop with its slots computed by the pool of remote workers. */
export class Coordinator {
  readonly loop: RunLoop;
  readonly pool: WorkerPool;
  readonly done: Promise<TrainingRun>;

  constructor(
    settings: RunSettings,
    preset: ModelPreset,
    dataset: Dataset,
    data: RunData,
    resumed: Checkpoint | undefined,
    runId: string,
    log: Logger,
    /** Memory shared with workers on this machine (mapping, doorbells); without it, sockets only. */
    sharedMemory?: SharedMemoryCalls,
  ) {
    const clog = log.child({ component: 'coordinator' });
    this.loop = new RunLoop(settings, preset, data, resumed, resumed?.runId ?? runId, clog);
    const descriptor = {
      runId: this.loop.runId,
      preset: preset.name,
      realLabel: 1 - settings.labelSmoothing,
      dataset: { name: dataset.name, count: dataset.count, fingerprint: dataset.fingerprint },
      ...(settings.relaySums === 'float32' ? { relaySums: 'float32' as const } : {}),
    };
    const run = this.loop.run;
    this.pool = new WorkerPool(settings, { preset, store: run.store, round: () => run.round }, () => descriptor, this.loop.events, clog, sharedMemory);
    this.done = this.loop.train(this.pool);
    // The loop's failure is reported through `done`; avoid an unhandled rejection before anyone awaits it.
    this.done.catch(() => undefined);
  }

  get run(): TrainingRun {
    return this.loop.run;
  }

  get events(): RunEvents {
    return this.loop.events;
  }

  get latestSamplesPath(): string | undefined {
    return this.loop.latestSamplesPath;
  }

  generator(kind: GeneratorKind = 'averaged'): Promise<GeneratorArtifacts> {
    return this.loop.generator(kind);
  }

  checkpoint(): Promise<string | undefined> {
    return this.loop.checkpoint();
  }

  admit(ws: WebSocket, hello: Hello, remote: string): void {
    this.pool.admit(ws, hello, remote);
  }

  stop(): void {
    this.loop.stop();
    this.pool.stop();
  }

  status(): CoordinatorStatus {
    const { run, settings } = this.loop;
    return {
      runId: this.loop.runId,
      preset: run.preset.name,
      round: run.round,
      totalRounds: run.schedule.totalRounds,
      step: run.iteration,
      steps: run.schedule.config.steps,
      phase: run.phase,
      state: this.loop.state,
      minWorkers: settings.minWorkers,
      workers: this.pool.status(),
      ...(this.loop.lastRound ? { lastRound: this.loop.lastRound } : {}),
    };
  }
}
