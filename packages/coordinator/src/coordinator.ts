import type { WebSocket } from 'ws';
import {
  type Dataset,
  GanError,
  type GeneratorArtifacts,
  type Hello,
  type Logger,
  type ModelPreset,
  PROTOCOL_VERSION,
  type WireDtype,
  encodeTensors,
  generatorArtifacts,
} from '@ganfleet/shared';
import { type Checkpoint, writeCheckpoint } from './checkpoint.js';
import { CoordinatorEvents } from './events.js';
import { type EvalSettings, RunEvaluation, evalSummary } from './runEvaluation.js';
import { RunOutputs } from './runOutputs.js';
import { type RoundResult, TrainingRun, type TrainingSettings } from './trainingRun.js';
import { type Reply, WorkerConnection } from './workerConnection.js';

/** The training side of a coordinator's configuration (the network side is in server.ts). */
export interface RunSettings extends TrainingSettings, EvalSettings {
  /** Rounds wait (paused) until at least this many workers are connected. */
  minWorkers: number;
  /** Write a checkpoint under `out` every this many rounds (0 or absent: only at the end and on stop). */
  checkpointEvery?: number;
  /** Close a round this many seconds after it was sent, over the replies that arrived (0 or absent: wait for all). */
  roundTimeoutS?: number;
  /** Ping interval; a worker silent for 3 intervals is dropped (default 1000 ms). */
  heartbeatMs?: number;
  /** Encoding of parameters and gradients on the wire (default float32; float16 halves the bytes). */
  wireDtype?: WireDtype;
  log: Logger;
  onRound?: (r: RoundLog) => void;
}

/** Run settings stored in checkpoints: a resumed run continues with exactly these. */
export const RESUMED_SETTINGS = ['preset', 'seed', 'batchSize', 'schedule', 'adam', 'bnMomentum'] as const;

/** What the coordinator logs for every applied round. */
export interface RoundLog extends RoundResult {
  workers: number;
  /** Slowest worker's own compute time. */
  computeMs: number;
  /** From the first reply to the last: time spent waiting for the slowest. */
  waitMs: number;
  broadcastMs: number;
  roundMs: number;
  bytesOut: number;
  bytesIn: number;
  /** The last worker to reply and how far behind the median reply it was. */
  slowest: { worker: string; lagMs: number };
  /** Workers whose reply missed --round-timeout. */
  dropped: number;
}

export interface WorkerStatus {
  id: string;
  backend: string;
  device: string;
  joinedAt: string;
  lastComputeMs: number;
  rounds: number;
  status: 'computing' | 'idle' | 'late';
}

export interface CoordinatorStatus {
  runId: string;
  preset: string;
  round: number;
  totalRounds: number;
  step: number;
  steps: number;
  phase: 'D' | 'G';
  state: 'waiting' | 'training' | 'done';
  minWorkers: number;
  workers: WorkerStatus[];
  lastRound?: RoundLog;
}

const DEFAULT_HEARTBEAT_MS = 1000;

/**
 * Membership and rounds: who is in the run, what each worker computes each round, how
 * replies are combined (TrainingRun), and what gets written (samples, generator, checkpoints).
 */
export class Coordinator {
  readonly run: TrainingRun;
  readonly events = new CoordinatorEvents();
  readonly done: Promise<TrainingRun>;
  readonly runId: string;
  private readonly workers = new Map<string, WorkerConnection>();
  private readonly outputs: RunOutputs | undefined;
  private readonly evaluation: RunEvaluation;
  private readonly log: Logger;
  private joinSeq = 0;
  private membershipChanged: (() => void) | undefined;
  private stopping = false;
  private state: CoordinatorStatus['state'] = 'waiting';
  private lastRound: RoundLog | undefined;

  constructor(
    private readonly config: RunSettings,
    readonly preset: ModelPreset,
    private readonly dataset: Dataset,
    resumed: Checkpoint | undefined,
    runId: string,
  ) {
    this.log = config.log.child({ component: 'coordinator' });
    this.run = new TrainingRun({ ...config, preset, datasetCount: dataset.count });
    this.runId = resumed?.runId ?? runId;
    if (resumed) this.run.restore(resumed.snapshot);
    this.outputs = config.out ? new RunOutputs(config.out, preset, config.seed) : undefined;
    this.evaluation = new RunEvaluation(preset, config.seed, config);
    this.done = this.trainLoop();
    // The loop's failure is reported through `done`; avoid an unhandled rejection before anyone awaits it.
    this.done.catch(() => undefined);
  }

  get latestSamplesPath(): string | undefined {
    return this.outputs?.latestSamplesPath;
  }

  status(): CoordinatorStatus {
    return {
      runId: this.runId,
      preset: this.preset.name,
      round: this.run.round,
      totalRounds: this.run.schedule.totalRounds,
      step: this.run.iteration,
      steps: this.run.schedule.config.steps,
      phase: this.run.phase,
      state: this.state,
      minWorkers: this.config.minWorkers,
      workers: [...this.workers.values()].map((w) => ({
        id: w.id,
        backend: w.info.backend,
        device: w.info.device,
        joinedAt: w.joinedAt.toISOString(),
        lastComputeMs: w.lastRoundMs,
        rounds: w.rounds,
        status: w.behind ? 'late' : w.busy ? 'computing' : 'idle',
      })),
      ...(this.lastRound ? { lastRound: this.lastRound } : {}),
    };
  }

  generator(): Promise<GeneratorArtifacts> {
    return generatorArtifacts(this.preset, this.run.store.params, { steps: this.run.iteration, runId: this.runId });
  }

  /** Admits a worker that said a valid, authorised hello: welcome with all parameters, then it joins the next round. */
  admit(ws: WebSocket, hello: Hello): void {
    // The configured encoding when the worker can decode it, else the other one it offers.
    const wanted = this.config.wireDtype ?? 'float32';
    const wireDtype: WireDtype = hello.capabilities.wireDtypes.includes(wanted) ? wanted : (hello.capabilities.wireDtypes[0] ?? 'float32');
    const id = `w${++this.joinSeq}`;
    const store = this.run.store;
    const worker = new WorkerConnection({
      id,
      joinSeq: this.joinSeq,
      ws,
      info: { backend: hello.backend, device: hello.device },
      preset: this.preset,
      wireDtype,
      syncedVersion: store.version,
      heartbeatMs: this.config.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
      log: this.log.child({ worker: id }),
      onClosed: (w, reason) => this.onWorkerClosed(w, reason),
      onLateReply: (round) => {
        this.events.emit('replyDropped', { worker: id, round, reason: 'late' });
        this.membershipChanged?.();
      },
    });
    const all = this.preset.params.map((s) => ({ name: s.name, shape: s.shape, values: store.params.get(s.name) as Float32Array }));
    worker.send({
      type: 'welcome',
      workerId: id,
      step: this.run.round,
      params: encodeTensors(all, wireDtype),
      run: {
        runId: this.runId,
        preset: this.preset.name,
        hyper: { batchSize: this.config.batchSize, seed: this.config.seed, protocol: PROTOCOL_VERSION },
        dataset: { name: this.dataset.name, count: this.dataset.count, fingerprint: this.dataset.fingerprint },
        wireDtype,
      },
    });
    this.workers.set(id, worker);
    this.log.info({ worker: id, backend: hello.backend, device: hello.device, workers: this.workers.size }, 'worker joined');
    this.events.emit('workerJoined', { worker: id, backend: hello.backend, device: hello.device });
    this.membershipChanged?.();
  }

  async checkpoint(): Promise<string | undefined> {
    if (!this.config.out) return undefined;
    const meta = Object.fromEntries(RESUMED_SETTINGS.map((k) => [k, this.config[k]]));
    const path = await writeCheckpoint(this.config.out, this.runId, this.run.snapshot(), meta);
    this.log.info({ round: this.run.round, path }, 'checkpoint written');
    return path;
  }

  stop(): void {
    this.stopping = true;
    this.membershipChanged?.();
    for (const w of this.workers.values()) w.stopHeartbeat();
  }

  /** Workers that take part in the next round, in join order (slot order). */
  private members(): WorkerConnection[] {
    return [...this.workers.values()].filter((w) => w.isOpen && !w.behind).sort((a, b) => a.joinSeq - b.joinSeq);
  }

  private onWorkerClosed(w: WorkerConnection, reason: string): void {
    if (!this.workers.delete(w.id)) return;
    this.log.info({ worker: w.id, reason, lastRound: w.lastRound, workers: this.workers.size }, 'worker left');
    this.events.emit('workerLeft', { worker: w.id, reason, lastRound: w.lastRound });
    this.membershipChanged?.();
  }

  private async waitForWorkers(): Promise<WorkerConnection[]> {
    let paused = false;
    while (!this.stopping) {
      const members = this.members();
      if (members.length >= this.config.minWorkers) {
        if (paused) {
          this.log.info({ workers: members.length }, 'training resumed');
          this.events.emit('resumed', { workers: members.length });
        }
        return members;
      }
      if (!paused) {
        this.state = 'waiting';
        this.log.info({ workers: members.length, minWorkers: this.config.minWorkers }, 'training paused: waiting for workers');
        this.events.emit('paused', { workers: members.length, minWorkers: this.config.minWorkers });
        paused = true;
      }
      await new Promise<void>((resolve) => (this.membershipChanged = resolve));
    }
    throw new GanError('INTERNAL', 'coordinator stopped');
  }

  private async trainLoop(): Promise<TrainingRun> {
    const run = this.run;
    while (!run.done) {
      const members = await this.waitForWorkers();
      this.state = 'training';
      const started = performance.now();
      const tasks = run.plan(members.length);
      const store = run.store;
      let bytesOut = 0;
      const replies = members.map((w, slot) => {
        const update = new Map(store.changedSince(w.syncedVersion).map((n) => [n, store.params.get(n) as Float32Array]));
        const r = w.request(tasks[slot] as (typeof tasks)[number], update, store.version);
        bytesOut += r.bytesSent;
        return r.reply;
      });
      const broadcastMs = performance.now() - started;
      const settled = await this.collect(replies);
      const ok = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
      const late = members.filter((_, i) => settled[i]?.status === 'rejected' && members[i]?.isOpen);
      for (const w of late) w.abandonRound();
      if (ok.length === 0) {
        this.log.warn({ round: run.round }, 'no worker completed the round; retrying it');
        continue;
      }
      if (ok.length < members.length)
        this.log.warn({ round: run.round, lost: members.length - ok.length, late: late.length }, 'round closed over the workers that answered');
      const result = run.complete(ok);
      this.logRound(result, ok, { started, broadcastMs, bytesOut, dropped: late.length });
      if (this.config.checkpointEvery && run.round % this.config.checkpointEvery === 0 && !run.done) await this.checkpoint();
      if (this.outputs && result.phase === 'G' && this.config.sampleEvery > 0 && result.iteration % this.config.sampleEvery === 0 && !run.done) {
        await this.writeSamples(result.iteration);
      }
      if (result.phase === 'G' && this.evaluation.due(result.iteration) && !run.done) await this.evaluate(result.iteration);
    }
    this.state = 'done';
    await this.checkpoint();
    if (this.outputs) {
      await this.writeSamples(run.iteration);
      const generator = await this.outputs.saveGenerator(run.store.params, { steps: run.iteration, seed: this.config.seed, runId: this.runId });
      this.log.info({ step: run.iteration, generator }, 'training finished');
    } else this.log.info({ step: run.iteration }, 'training finished');
    if (this.evaluation.enabled) await this.evaluate(run.iteration);
    await this.evaluation.dispose();
    this.events.emit('finished', { step: run.iteration });
    for (const w of this.workers.values()) w.send({ type: 'bye', reason: 'training finished' });
    return run;
  }

  /** Waits for all replies, or until --round-timeout; late ones count as rejected. */
  private async collect(replies: Promise<Reply>[]): Promise<PromiseSettledResult<Reply>[]> {
    const timeoutS = this.config.roundTimeoutS ?? 0;
    if (timeoutS <= 0) return Promise.allSettled(replies);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutS * 1000)));
    const results: PromiseSettledResult<Reply>[] = replies.map(() => ({
      status: 'rejected',
      reason: new GanError('TIMEOUT', 'reply missed the round timeout'),
    }));
    const tracked = replies.map((p, i) =>
      p.then(
        (value) => void (results[i] = { status: 'fulfilled', value }),
        (reason: unknown) => void (results[i] = { status: 'rejected', reason }),
      ),
    );
    await Promise.race([Promise.all(tracked), deadline]);
    clearTimeout(timer);
    return results;
  }

  private async evaluate(step: number): Promise<void> {
    const summary = evalSummary(await this.evaluation.evaluate(this.run.store.params));
    this.log.info({ step, ...summary }, 'eval');
    this.events.emit('evaluated', { step, ...summary });
  }

  private async writeSamples(step: number): Promise<void> {
    if (!this.outputs) return;
    const path = await this.outputs.writeSamples(this.run.store.params, step);
    this.log.info({ step, path }, 'samples written');
    this.events.emit('samplesWritten', { step, path });
  }

  private logRound(result: RoundResult, replies: Reply[], t: { started: number; broadcastMs: number; bytesOut: number; dropped: number }): void {
    const arrivals = replies.map((r) => r.receivedAt).sort((a, b) => a - b);
    const last = replies.reduce((a, b) => (b.receivedAt > a.receivedAt ? b : a));
    const entry: RoundLog = {
      ...result,
      workers: replies.length,
      computeMs: Math.max(...replies.map((r) => r.computeMs)),
      waitMs: (arrivals.at(-1) as number) - (arrivals[0] as number),
      broadcastMs: t.broadcastMs,
      roundMs: performance.now() - t.started,
      bytesOut: t.bytesOut,
      bytesIn: replies.reduce((n, r) => n + r.bytes, 0),
      slowest: { worker: last.worker, lagMs: last.receivedAt - (arrivals[Math.floor(arrivals.length / 2)] as number) },
      dropped: t.dropped,
    };
    this.lastRound = entry;
    this.log.info({ ...entry, step: result.iteration }, 'round');
    this.events.emit('round', entry);
    this.config.onRound?.(entry);
  }
}
