import { randomBytes } from 'node:crypto';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  type Dataset,
  GanError,
  type Logger,
  type ModelPreset,
  PROTOCOL_VERSION,
  type WireDtype,
  closeCodeFor,
  countParams,
  encodeMessage,
  encodeTensors,
  generatorArtifacts,
  getPreset,
  isGanError,
  loadDataset,
  parseWorkerMessage,
} from '@ganfleet/shared';
import type { AdamConfig } from './adam.js';
import { type Checkpoint, checkpointDir, loadLatestCheckpoint, writeCheckpoint } from './checkpoint.js';
import { RunOutputs } from './runOutputs.js';
import type { ScheduleConfig } from './schedule.js';
import { type RoundResult, TrainingRun } from './trainingRun.js';
import { type Reply, WorkerConnection } from './workerConnection.js';

export interface CoordinatorConfig {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  preset: string;
  seed: number;
  batchSize: number;
  schedule: ScheduleConfig;
  adam: AdamConfig;
  bnMomentum: number;
  dataDir?: string;
  out?: string;
  sampleEvery: number;
  /** Rounds wait until at least this many workers are connected. */
  minWorkers: number;
  /** Close the server once training is done (otherwise it keeps serving the generator). */
  exitWhenDone: boolean;
  /** Seconds a new connection has to say hello. */
  handshakeTimeoutS: number;
  /** Write a checkpoint under `out` every this many rounds (0: only at the end and on stop). */
  checkpointEvery?: number;
  /** Continue from the newest good checkpoint under this run directory; its settings win. */
  resumeFrom?: string;
  log: Logger;
  onRound?: (r: RoundLog) => void;
}

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
}

/** Run settings stored in checkpoints: a resumed run continues with exactly these. */
const RESUMED_SETTINGS = ['preset', 'seed', 'batchSize', 'schedule', 'adam', 'bnMomentum'] as const;

export interface CoordinatorHandle {
  url: string;
  port: number;
  /** Largest frame accepted from a peer (bytes), derived from the model size. */
  maxPayload: number;
  run: TrainingRun;
  /** Resolves when training has finished and outputs are written. */
  done: Promise<TrainingRun>;
  /** Writes a checkpoint now (between rounds); resolves to its path, or undefined without --out. */
  checkpoint(): Promise<string | undefined>;
  close(): Promise<void>;
}

/** Starts the coordinator: binds, waits for workers, runs the rounds, saves outputs. */
export async function startCoordinator(requested: CoordinatorConfig): Promise<CoordinatorHandle> {
  const log = requested.log.child({ component: 'coordinator' });
  let config = requested;
  let resumed: Checkpoint | undefined;
  if (requested.resumeFrom) {
    resumed = await loadLatestCheckpoint(requested.resumeFrom, log);
    if (!resumed) throw new GanError('CHECKPOINT_CORRUPT', `no usable checkpoint under ${checkpointDir(requested.resumeFrom)}`);
    config = { ...requested, ...(resumed.meta as Partial<CoordinatorConfig>), out: requested.out ?? requested.resumeFrom };
    log.info({ checkpoint: resumed.path, round: resumed.snapshot.round }, 'resuming from checkpoint');
  }
  const preset = getPreset(config.preset);
  const dataset = await loadDataset({ split: 'train', ...(config.dataDir ? { dir: config.dataDir } : {}) });
  const coordinator = new Coordinator(config, preset, dataset, resumed);
  const port = await coordinator.listen();
  return {
    url: `ws://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`,
    port,
    maxPayload: maxPayloadFor(preset),
    run: coordinator.run,
    done: coordinator.done,
    checkpoint: () => coordinator.checkpoint(),
    close: () => coordinator.close(),
  };
}

class Coordinator {
  readonly run: TrainingRun;
  readonly done: Promise<TrainingRun>;
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly workers = new Map<string, WorkerConnection>();
  private readonly outputs: RunOutputs | undefined;
  private readonly runId: string;
  private readonly log: Logger;
  private joinSeq = 0;
  private membershipChanged: (() => void) | undefined;
  private stopping = false;

  constructor(
    private readonly config: CoordinatorConfig,
    private readonly preset: ModelPreset,
    private readonly dataset: Dataset,
    resumed: Checkpoint | undefined,
  ) {
    this.log = config.log.child({ component: 'coordinator' });
    this.run = new TrainingRun({ ...config, preset, datasetCount: dataset.count });
    this.runId = resumed?.runId ?? randomBytes(6).toString('hex');
    if (resumed) this.run.restore(resumed.snapshot);
    this.outputs = config.out ? new RunOutputs(config.out, preset, config.seed) : undefined;
    this.http = createServer((_req, res) => res.writeHead(404).end());
    this.wss = new WebSocketServer({ server: this.http, maxPayload: maxPayloadFor(preset) });
    this.wss.on('connection', (ws) => this.onConnection(ws));
    this.done = this.trainLoop();
    // The loop's failure is reported through `done`; avoid an unhandled rejection before anyone awaits it.
    this.done.catch(() => undefined);
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.config.port, this.config.host, () => {
        const port = (this.http.address() as AddressInfo).port;
        this.log.info(
          { host: this.config.host, port, preset: this.preset.name, minWorkers: this.config.minWorkers, rounds: this.run.schedule.totalRounds },
          'coordinator listening',
        );
        resolve(port);
      });
    });
  }

  async checkpoint(): Promise<string | undefined> {
    if (!this.config.out) return undefined;
    const meta = Object.fromEntries(RESUMED_SETTINGS.map((k) => [k, this.config[k]]));
    const path = await writeCheckpoint(this.config.out, this.runId, this.run.snapshot(), meta);
    this.log.info({ round: this.run.round, path }, 'checkpoint written');
    return path;
  }

  async close(): Promise<void> {
    this.stopping = true;
    this.membershipChanged?.();
    for (const ws of this.wss.clients) ws.close(1001, 'coordinator shutting down');
    // Give peers a moment to complete the closing handshake, then cut whoever is left.
    await new Promise((resolve) => setTimeout(resolve, this.wss.clients.size ? 500 : 0));
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  /** Handshake: the first frame must be hello (join) or fetchGenerator (download). */
  private onConnection(ws: WebSocket): void {
    const timer = setTimeout(() => ws.close(closeCodeFor('TIMEOUT'), 'TIMEOUT: no hello'), this.config.handshakeTimeoutS * 1000);
    ws.once('message', (data, isBinary) => {
      clearTimeout(timer);
      void this.onFirstMessage(ws, data, isBinary).catch((err: unknown) => {
        const e = isGanError(err) ? err : new GanError('INTERNAL', String(err));
        this.log.warn({ code: e.code }, `connection refused: ${e.message}`);
        if (ws.readyState === ws.OPEN) {
          ws.send(encodeMessage({ type: 'refuse', code: e.code, reason: e.message }));
          ws.close(closeCodeFor(e.code), `${e.code}: ${e.message}`.slice(0, 120));
        }
      });
    });
    ws.on('close', () => clearTimeout(timer));
  }

  private async onFirstMessage(ws: WebSocket, data: unknown, isBinary: boolean): Promise<void> {
    const msg = parseWorkerMessage(data, isBinary);
    if (msg.type === 'fetchGenerator') {
      const art = await generatorArtifacts(this.preset, this.run.store.params, { steps: this.run.iteration });
      ws.send(encodeMessage({ type: 'generator', step: this.run.iteration, modelJson: art.modelJson, weights: art.weights }));
      ws.close(1000, 'done');
      return;
    }
    if (msg.type !== 'hello') throw new GanError('BAD_MESSAGE', `expected hello, got ${msg.type}`);
    const wireDtype: WireDtype = msg.capabilities.wireDtypes.includes('float32') ? 'float32' : 'float16';
    const id = `w${++this.joinSeq}`;
    const store = this.run.store;
    const worker = new WorkerConnection(
      id,
      this.joinSeq,
      ws,
      { backend: msg.backend, device: msg.device },
      this.preset,
      wireDtype,
      store.version,
      this.log.child({ worker: id }),
      (w) => this.onWorkerClosed(w),
    );
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
    this.log.info({ worker: id, backend: msg.backend, device: msg.device, workers: this.workers.size }, 'worker joined');
    this.membershipChanged?.();
  }

  private onWorkerClosed(w: WorkerConnection): void {
    if (!this.workers.delete(w.id)) return;
    this.log.info({ worker: w.id, lastStep: this.run.round, workers: this.workers.size }, 'worker left');
    this.membershipChanged?.();
  }

  private async waitForWorkers(): Promise<WorkerConnection[]> {
    let announced = false;
    while (!this.stopping) {
      const members = [...this.workers.values()].filter((w) => w.isOpen).sort((a, b) => a.joinSeq - b.joinSeq);
      if (members.length >= this.config.minWorkers) return members;
      if (!announced) this.log.info({ workers: members.length, minWorkers: this.config.minWorkers }, 'waiting for workers');
      announced = true;
      await new Promise<void>((resolve) => (this.membershipChanged = resolve));
    }
    throw new GanError('INTERNAL', 'coordinator stopped');
  }

  private async trainLoop(): Promise<TrainingRun> {
    const run = this.run;
    while (!run.done) {
      const members = await this.waitForWorkers();
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
      const settled = await Promise.allSettled(replies);
      const ok = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
      if (ok.length === 0) {
        this.log.warn({ round: run.round }, 'no worker completed the round; retrying it');
        continue;
      }
      if (ok.length < members.length) this.log.warn({ round: run.round, lost: members.length - ok.length }, 'round closed over the surviving workers');
      const result = run.complete(ok);
      this.logRound(result, ok, { started, broadcastMs, bytesOut });
      if (this.config.checkpointEvery && run.round % this.config.checkpointEvery === 0 && !run.done) await this.checkpoint();
      if (this.outputs && result.phase === 'G' && this.config.sampleEvery > 0 && result.iteration % this.config.sampleEvery === 0 && !run.done) {
        this.log.info({ step: result.iteration, path: await this.outputs.writeSamples(store.params, result.iteration) }, 'samples written');
      }
    }
    await this.checkpoint();
    if (this.outputs) {
      const samples = await this.outputs.writeSamples(run.store.params, run.iteration);
      const generator = await this.outputs.saveGenerator(run.store.params, { steps: run.iteration, seed: this.config.seed });
      this.log.info({ step: run.iteration, samples, generator }, 'training finished');
    } else this.log.info({ step: run.iteration }, 'training finished');
    for (const w of this.workers.values()) w.send({ type: 'bye', reason: 'training finished' });
    if (this.config.exitWhenDone) await this.close();
    return run;
  }

  private logRound(result: RoundResult, replies: Reply[], t: { started: number; broadcastMs: number; bytesOut: number }): void {
    const arrivals = replies.map((r) => r.receivedAt);
    const entry: RoundLog = {
      ...result,
      workers: replies.length,
      computeMs: Math.max(...replies.map((r) => r.computeMs)),
      waitMs: Math.max(...arrivals) - Math.min(...arrivals),
      broadcastMs: t.broadcastMs,
      roundMs: performance.now() - t.started,
      bytesOut: t.bytesOut,
      bytesIn: replies.reduce((n, r) => n + r.bytes, 0),
    };
    this.log.info({ ...entry, step: result.iteration }, 'round');
    this.config.onRound?.(entry);
  }
}

/** Largest legitimate worker frame: one phase's gradients (or one set of stats) plus headroom for the envelope. */
export function maxPayloadFor(preset: ModelPreset): number {
  const largest = Math.max(countParams(preset, 'G'), countParams(preset, 'D'));
  return largest * 4 + 1024 * 1024;
}
