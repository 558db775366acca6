import { hostname } from 'node:os';
import WebSocket from 'ws';
import {
  type CoordinatorToWorker,
  GanError,
  type GanErrorCode,
  PROTOCOL_VERSION,
  type Round,
  TensorEncoder,
  type WireDtype,
  closeCodeFor,
  decodeIndices,
  decodeTensors,
  encodeMessage,
  isGanError,
  parseCoordinatorMessage,
} from '@ganfleet/shared/wire';
import { type Logger } from '@ganfleet/shared/log';
import { getPreset } from '@ganfleet/shared/model';
import { type BackendChoice } from '@ganfleet/shared/backends';
import { ComputeThread } from './computeThread.js';

export interface WorkerConfig {
  /** ws:// or wss:// address of the coordinator. */
  url: string;
  backend: BackendChoice;
  dataDir?: string;
  /** Shared secret (--token or GANFLEET_TOKEN). */
  token?: string;
  /** Extra CA certificate(s), PEM, for a coordinator with a self-signed certificate. */
  ca?: string | Buffer;
  /** Stop retrying after the coordinator has been unreachable this long (seconds). */
  giveUpAfterS?: number;
  log: Logger;
}

export interface WorkerHandle {
  /** Resolves when the coordinator says training is over; rejects on a fatal refusal or after --give-up-after. */
  done: Promise<{ rounds: number; reason: string }>;
  close(): Promise<void>;
}

/** Refusals that retrying cannot fix. */
const FATAL: readonly GanErrorCode[] = ['UNAUTHORIZED', 'VERSION_MISMATCH', 'DATASET_MISMATCH', 'CONFIG_INVALID'];
const BACKOFF_MS = { first: 250, max: 5000 };

/**
 * Connects to a coordinator, joins the run and answers rounds until told to stop. Gradients
 * are computed on a separate thread; the connection comes back by itself (with backoff) when
 * the coordinator restarts or the network drops.
 */
export async function startWorker(config: WorkerConfig): Promise<WorkerHandle> {
  const log = config.log.child({ component: 'worker' });
  const thread = new ComputeThread();
  const { backend, dataset } = await thread.init(config.backend, config.dataDir);
  log.info({ backend: backend.name, reason: backend.reason, skipped: backend.skipped, dataset: dataset.name }, `backend ${backend.name}`);
  let stopped = false;
  let current: WebSocket | undefined;
  let rounds = 0;

  const run = async (): Promise<{ rounds: number; reason: string }> => {
    let unreachableSince = Date.now();
    let delay = BACKOFF_MS.first;
    for (;;) {
      const ws = new WebSocket(config.url, { maxPayload: 0, handshakeTimeout: 10_000, ...(config.ca ? { ca: config.ca } : {}) });
      current = ws;
      const session = new WorkerSession(ws, thread, dataset.fingerprint, log, () => {
        unreachableSince = Date.now();
        delay = BACKOFF_MS.first;
      });
      ws.on('open', () => {
        const wireDtypes: WireDtype[] = ['float32', 'float16'];
        ws.send(
          encodeMessage({
            type: 'hello',
            version: PROTOCOL_VERSION,
            backend: backend.name,
            device: `${hostname()} (${backend.name})`,
            capabilities: { wireDtypes },
            ...(config.token ? { token: config.token } : {}),
          }),
        );
      });
      const outcome = await session.ended;
      rounds += session.rounds;
      if (outcome.kind === 'finished' || stopped) return { rounds, reason: outcome.reason };
      if (outcome.kind === 'fatal') throw outcome.error;
      const giveUpMs = (config.giveUpAfterS ?? 300) * 1000;
      if (Date.now() - unreachableSince > giveUpMs) {
        throw new GanError(
          'WORKER_LOST',
          `coordinator at ${config.url} unreachable for ${Math.round((Date.now() - unreachableSince) / 1000)} s (--give-up-after ${giveUpMs / 1000}): ${outcome.reason}`,
        );
      }
      log.warn({ retryInMs: delay, reason: outcome.reason }, 'connection lost; reconnecting');
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(BACKOFF_MS.max, delay * 2);
      if (stopped) return { rounds, reason: 'stopped' };
    }
  };
  const done = run().finally(() => thread.terminate());
  return {
    done,
    close: async () => {
      stopped = true;
      current?.close(1000, 'worker stopping');
      await done.catch(() => undefined);
    },
  };
}

type Outcome = { kind: 'finished'; reason: string } | { kind: 'lost'; reason: string } | { kind: 'fatal'; reason: string; error: GanError };

/** One connection: welcome, rounds, until bye, a refusal, or the socket dropping. */
class WorkerSession {
  readonly ended: Promise<Outcome>;
  rounds = 0;
  private wireDtype: WireDtype = 'float32';
  private preset: ReturnType<typeof getPreset> | undefined;
  /** The preset's parameter shapes by name, set on welcome. */
  private shapes: ReadonlyMap<string, number[]> = new Map();
  private fatal: GanError | undefined;
  private finished = false;
  /** Frames are handled strictly in order; a round's compute is asynchronous. */
  private queue: Promise<void> = Promise.resolve();
  /** Reused every round; each result is valid until its next encode, and encodeMessage copies it first. */
  private readonly gradEncoder = new TensorEncoder();
  private readonly statsEncoder = new TensorEncoder();

  constructor(
    private readonly ws: WebSocket,
    private readonly thread: ComputeThread,
    private readonly fingerprint: string,
    private log: Logger,
    private readonly onJoined: () => void,
  ) {
    this.ended = new Promise((resolve) => {
      ws.on('message', (data, isBinary) => {
        this.queue = this.queue.then(() => this.onMessage(data, isBinary)).catch((err: unknown) => this.fail(err));
      });
      ws.on('close', (code, reason) => {
        const text = reason.toString() || `close code ${code}`;
        if (this.finished) resolve({ kind: 'finished', reason: text });
        else if (this.fatal) resolve({ kind: 'fatal', reason: text, error: this.fatal });
        else resolve({ kind: 'lost', reason: text });
      });
      // 'close' follows 'error'; the error only explains it.
      ws.on('error', (err) => this.log.debug({ err: err.message }, 'socket error'));
    });
  }

  private async onMessage(data: unknown, isBinary: boolean): Promise<void> {
    const msg: CoordinatorToWorker = parseCoordinatorMessage(data, isBinary);
    switch (msg.type) {
      case 'welcome': {
        const { run } = msg;
        if (run.dataset.fingerprint !== this.fingerprint) {
          throw new GanError(
            'DATASET_MISMATCH',
            `coordinator trains on ${run.dataset.name} (${run.dataset.fingerprint}), this worker holds ${this.fingerprint}`,
          );
        }
        this.log = this.log.child({ worker: msg.workerId });
        this.wireDtype = run.wireDtype;
        const preset = getPreset(run.preset);
        this.preset = preset;
        this.shapes = new Map(preset.params.map((s) => [s.name, s.shape]));
        const expected = preset.params.map((s) => ({ name: s.name, shape: s.shape }));
        await this.thread.start(preset.name, new Map(decodeTensors(msg.params, { expected }).map((t) => [t.name, t.values])));
        this.log.info({ runId: run.runId, preset: run.preset, step: msg.step }, 'joined run');
        this.onJoined();
        return;
      }
      case 'round':
        return this.onRound(msg);
      case 'bye':
        this.log.info({ rounds: this.rounds, reason: msg.reason }, 'coordinator said bye');
        this.finished = true;
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
    const preset = this.preset;
    if (!preset) throw new GanError('BAD_MESSAGE', 'round before welcome');
    if (msg.update) await this.thread.update(new Map(decodeTensors(msg.update).map((t) => [t.name, t.values])));
    const r = await this.thread.compute({
      phase: msg.phase,
      batchSize: msg.batchSize,
      seed: msg.seed,
      ...(msg.indices ? { indices: decodeIndices(msg.indices) } : {}),
    });
    const grads = [...r.grads].map(([name, values]) => ({ name, shape: this.shapes.get(name) as number[], values }));
    const stats = [...r.stats].map(([name, values]) => ({ name, shape: [values.length], values }));
    if (this.ws.readyState !== WebSocket.OPEN) return;
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
    if (FATAL.includes(e.code)) this.fatal = e;
    if (this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(encodeMessage({ type: 'error', code: e.code, message: e.message }));
      this.ws.close(closeCodeFor(e.code), `${e.code}: ${e.message}`.slice(0, 120));
    }
  }
}
