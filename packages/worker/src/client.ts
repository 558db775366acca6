import { hostname } from 'node:os';
import WebSocket from 'ws';
import {
  type BackendChoice,
  type CoordinatorToWorker,
  type Dataset,
  GanError,
  type Logger,
  PROTOCOL_VERSION,
  type Round,
  type WireDtype,
  closeCodeFor,
  decodeIndices,
  decodeTensors,
  encodeMessage,
  getPreset,
  isGanError,
  loadDataset,
  parseCoordinatorMessage,
  selectBackend,
  TensorEncoder,
} from '@ganfleet/shared';
import { Trainer } from './trainer.js';

export interface WorkerConfig {
  /** ws:// or wss:// address of the coordinator. */
  url: string;
  backend: BackendChoice;
  dataDir?: string;
  log: Logger;
}

export interface WorkerHandle {
  /** Resolves when the coordinator says training is over (or closes the connection). */
  done: Promise<{ rounds: number; reason: string }>;
  close(): void;
}

/** Connects to a coordinator, joins the run and answers rounds until told to stop. */
export async function startWorker(config: WorkerConfig): Promise<WorkerHandle> {
  const log = config.log.child({ component: 'worker' });
  const backend = await selectBackend(config.backend, (msg, fields) => log.debug(fields ?? {}, msg));
  log.info({ backend: backend.name, reason: backend.reason, skipped: backend.skipped }, `backend ${backend.name}`);
  const dataset = await loadDataset({ split: 'train', ...(config.dataDir ? { dir: config.dataDir } : {}) });
  const ws = new WebSocket(config.url, { maxPayload: 0 });
  const session = new WorkerSession(ws, dataset, log);
  ws.on('open', () => {
    const wireDtypes: WireDtype[] = ['float32', 'float16'];
    ws.send(
      encodeMessage({
        type: 'hello',
        version: PROTOCOL_VERSION,
        backend: backend.name,
        device: `${hostname()} (${backend.name})`,
        capabilities: { wireDtypes },
      }),
    );
  });
  return { done: session.done, close: () => ws.close(1000, 'worker stopping') };
}

class WorkerSession {
  readonly done: Promise<{ rounds: number; reason: string }>;
  private trainer: Trainer | undefined;
  private wireDtype: WireDtype = 'float32';
  private rounds = 0;
  /** Frames are handled strictly in order; a round's compute is asynchronous. */
  private queue: Promise<void> = Promise.resolve();
  /** Reused every round; each result is valid until its next encode, and encodeMessage copies it first. */
  private readonly gradEncoder = new TensorEncoder();
  private readonly statsEncoder = new TensorEncoder();

  constructor(
    private readonly ws: WebSocket,
    private readonly dataset: Dataset,
    private log: Logger,
  ) {
    this.done = new Promise((resolve, reject) => {
      ws.on('message', (data, isBinary) => {
        this.queue = this.queue.then(() => this.onMessage(data, isBinary)).catch((err: unknown) => this.fail(err));
      });
      ws.on('close', (code, reason) => {
        this.trainer?.dispose();
        const text = reason.toString() || String(code);
        if (code === 1000 || code === 1001) resolve({ rounds: this.rounds, reason: text });
        else reject(new GanError('WORKER_LOST', `coordinator closed the connection: ${text}`));
      });
      ws.on('error', (err) => reject(new GanError('WORKER_LOST', `cannot reach coordinator: ${err.message}`)));
    });
  }

  private async onMessage(data: unknown, isBinary: boolean): Promise<void> {
    const msg: CoordinatorToWorker = parseCoordinatorMessage(data, isBinary);
    switch (msg.type) {
      case 'welcome': {
        const { run } = msg;
        if (run.dataset.fingerprint !== this.dataset.fingerprint) {
          throw new GanError(
            'DATASET_MISMATCH',
            `coordinator trains on ${run.dataset.name} (${run.dataset.fingerprint}), this worker holds ${this.dataset.name} (${this.dataset.fingerprint})`,
          );
        }
        this.log = this.log.child({ worker: msg.workerId });
        this.wireDtype = run.wireDtype;
        const preset = getPreset(run.preset);
        this.trainer = new Trainer(preset, this.dataset);
        const expected = preset.params.map((s) => ({ name: s.name, shape: s.shape }));
        this.trainer.update(new Map(decodeTensors(msg.params, { expected }).map((t) => [t.name, t.values])));
        this.log.info({ runId: run.runId, preset: run.preset, step: msg.step }, 'joined run');
        return;
      }
      case 'round':
        return this.onRound(msg);
      case 'bye':
        this.log.info({ rounds: this.rounds, reason: msg.reason }, 'coordinator said bye');
        this.ws.close(1000, msg.reason);
        return;
      case 'refuse':
      case 'error':
        throw new GanError(msg.code, `coordinator: ${msg.type === 'refuse' ? msg.reason : msg.message}`);
      default:
        throw new GanError('BAD_MESSAGE', `unexpected ${msg.type} message`);
    }
  }

  private async onRound(msg: Round): Promise<void> {
    const trainer = this.trainer;
    if (!trainer) throw new GanError('BAD_MESSAGE', 'round before welcome');
    if (msg.update) trainer.update(new Map(decodeTensors(msg.update).map((t) => [t.name, t.values])));
    const r = await trainer.compute({
      phase: msg.phase,
      batchSize: msg.batchSize,
      seed: msg.seed,
      ...(msg.indices ? { indices: decodeIndices(msg.indices) } : {}),
    });
    const shapes = new Map(trainer.preset.params.map((s) => [s.name, s.shape]));
    const grads = [...r.grads].map(([name, values]) => ({ name, shape: shapes.get(name) as number[], values }));
    const stats = [...r.stats].map(([name, values]) => ({ name, shape: [values.length], values }));
    this.ws.send(
      encodeMessage({
        type: 'gradients',
        step: msg.step,
        phase: msg.phase,
        samples: r.samples,
        loss: r.loss,
        computeMs: r.computeMs,
        grads: this.gradEncoder.encode(grads, this.wireDtype),
        ...(stats.length ? { stats: this.statsEncoder.encode(stats, this.wireDtype) } : {}),
      }),
    );
    this.rounds += 1;
    this.log.debug({ step: msg.step, phase: msg.phase, loss: r.loss, computeMs: r.computeMs }, 'round done');
  }

  private fail(err: unknown): void {
    const e = isGanError(err) ? err : new GanError('INTERNAL', String(err));
    this.log.error({ code: e.code }, e.message);
    if (this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(encodeMessage({ type: 'error', code: e.code, message: e.message }));
      this.ws.close(closeCodeFor(e.code), `${e.code}: ${e.message}`.slice(0, 120));
    }
  }
}
