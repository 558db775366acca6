import type { WebSocket } from 'ws';
import {
  GanError,
  type Gradients,
  closeCodeFor,
  decodeTensors,
  encodeIndices,
  encodeMessage,
  frameHead,
  isGanError,
  parseWorkerMessage,
  type CoordinatorToWorker,
  type WireDtype,
} from '@ganfleet/shared/wire';
import type { Logger } from '@ganfleet/shared/log';
import { type ModelPreset, sizeOf, specsOf } from '@ganfleet/shared/model';
import { checkBatchNormStats, checkLoss, gradientNorm } from './contributionChecks.js';
import type { Contribution } from './paramStore.js';
import type { SharedBody } from './updateBroadcast.js';
import type { SlotTask } from './trainingRun.js';

/** A validated reply with its timing and size, as the round loop needs it. */
export interface Reply extends Contribution {
  worker: string;
  /** L2 norm of all its gradients, for screening against the others. */
  norm: number;
  computeMs: number;
  receivedAt: number;
  bytes: number;
}

interface Pending {
  task: SlotTask;
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
}

/**
 * One joined worker: sends it rounds, validates its replies against the round it was given,
 * and closes it (with a close code and a logged error code) at the first bad frame.
 */
export interface WorkerConnectionOptions {
  id: string;
  /** Join order: slots are assigned in this order, so runs are reproducible. */
  joinSeq: number;
  ws: WebSocket;
  info: { backend: string; device: string };
  preset: ModelPreset;
  wireDtype: WireDtype;
  /** Store version of the parameters the welcome carried. */
  syncedVersion: number;
  /** Ping interval; three intervals without a pong and the worker counts as dead. */
  heartbeatMs: number;
  log: Logger;
  onClosed: (w: WorkerConnection, reason: string) => void;
  /** A reply for a round that --round-timeout already closed (dropped, not applied). */
  onLateReply: (round: number) => void;
}

/**
 * One joined worker: sends it rounds, validates its replies against the round it was given,
 * and closes it (with a close code and a logged error code) at the first bad frame. A heartbeat
 * notices a worker that vanished without closing its socket (power loss, cable pulled).
 */
export class WorkerConnection {
  readonly id: string;
  readonly joinSeq: number;
  readonly ws: WebSocket;
  readonly info: { backend: string; device: string };
  readonly joinedAt = new Date();
  /** Store version this worker's replica corresponds to. */
  syncedVersion: number;
  lastRoundMs = 0;
  rounds = 0;
  /** Last round this worker was asked to compute. */
  lastRound = -1;
  private pending: Pending | undefined;
  /** Rounds closed without this worker's reply: those replies are dropped when they come. */
  private readonly abandoned = new Set<number>();
  /** Deadlines missed since the last round answered in time. */
  private missedInARow = 0;
  private stragglerTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private lastPong = Date.now();
  private lastBeat = Date.now();
  private readonly heartbeat: NodeJS.Timeout;
  private readonly preset: ModelPreset;
  private readonly wireDtype: WireDtype;
  private readonly log: Logger;

  constructor(private readonly opts: WorkerConnectionOptions) {
    ({ id: this.id, joinSeq: this.joinSeq, ws: this.ws, info: this.info, preset: this.preset, wireDtype: this.wireDtype, log: this.log } = opts);
    this.syncedVersion = opts.syncedVersion;
    const ws = this.ws;
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', (code, reason) => this.onClose(code, reason.toString()));
    ws.on('error', (err) => this.log.warn({ err: err.message }, 'worker socket error'));
    ws.on('pong', () => (this.lastPong = Date.now()));
    this.heartbeat = setInterval(() => this.beat(), opts.heartbeatMs);
  }

  get busy(): boolean {
    return this.pending !== undefined;
  }

  /** Still computing a round that was closed without it: it sits out until that reply arrives. */
  get behind(): boolean {
    return this.abandoned.size > 0;
  }

  stopHeartbeat(): void {
    clearInterval(this.heartbeat);
  }

  /**
   * The round closed without this worker's reply (it missed the deadline): it sits out until that
   * reply arrives, and is dropped as a STRAGGLER if it has not arrived `dropAfterMs` from now (a
   * hung compute thread answers pings but never replies) or if it was late the round before too.
   */
  abandonRound(dropAfterMs: number): void {
    if (!this.pending) return;
    const round = this.pending.task.round;
    this.abandoned.add(round);
    this.pending = undefined;
    this.missedInARow += 1;
    if (this.missedInARow >= 2) {
      this.reject(new GanError('STRAGGLER', `missed the deadline of ${this.missedInARow} rounds in a row`));
      return;
    }
    clearTimeout(this.stragglerTimer);
    this.stragglerTimer = setTimeout(() => {
      if (this.abandoned.has(round))
        this.reject(new GanError('STRAGGLER', `no reply to round ${round} ${Math.round(dropAfterMs / 1000)} s after its deadline`));
    }, dropAfterMs);
  }

  private beat(): void {
    const now = Date.now();
    const lateMs = now - this.lastBeat - this.opts.heartbeatMs;
    this.lastBeat = now;
    // If this process was busy (evaluation, sample grids), pongs are still unread in the socket:
    // timers run before I/O, so judging now would blame the worker for our own pause.
    if (lateMs > this.opts.heartbeatMs) {
      this.lastPong = now;
      this.ws.ping();
      return;
    }
    const silentMs = now - this.lastPong;
    if (silentMs > 3 * this.opts.heartbeatMs) {
      this.log.warn({ code: 'WORKER_LOST', silentMs, lastRound: this.lastRound }, 'worker unresponsive: dropping it');
      this.ws.terminate();
      this.finish(new GanError('WORKER_LOST', `worker ${this.id} stopped answering pings`), 'unresponsive');
      return;
    }
    this.ws.ping();
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  send(msg: CoordinatorToWorker): number {
    const bytes = encodeMessage(msg);
    this.ws.send(bytes);
    return bytes.byteLength;
  }

  /**
   * Sends a round with `update`, the parameters changed since this worker last synced (a body
   * shared with the other workers that need the same: its own header goes first, as one fragment
   * of the message, then the shared bytes as the other), and awaits its reply.
   */
  request(task: SlotTask, update: SharedBody | undefined, version: number, onSent: (body: SharedBody) => void): { bytesSent: number; reply: Promise<Reply> } {
    if (this.closed) return { bytesSent: 0, reply: Promise.reject(new GanError('WORKER_LOST', `worker ${this.id} is gone`)) };
    const reply = new Promise<Reply>((resolve, reject) => (this.pending = { task, resolve, reject }));
    this.lastRound = task.round;
    const head = frameHead({
      type: 'round',
      round: task.round,
      phase: task.phase,
      batchSize: task.batchSize,
      seed: task.seed,
      ...(task.indices ? { indices: encodeIndices(task.indices) } : {}),
      ...(update ? { update: update.manifest } : {}),
    });
    if (update) {
      update.inFlight += 1;
      this.ws.send(head, { fin: false });
      this.ws.send(update.bytes, { fin: true }, () => onSent(update));
    } else this.ws.send(head);
    this.syncedVersion = version;
    return { bytesSent: head.byteLength + (update?.bytes.byteLength ?? 0), reply };
  }

  /** The wire dtype agreed with this worker. */
  get dtype(): WireDtype {
    return this.wireDtype;
  }

  /** Closes with the WebSocket close code for `err.code`; the reason is truncated to fit a close frame. */
  reject(err: GanError): void {
    this.log.warn({ code: err.code }, err.message);
    if (!this.closed) this.ws.close(closeCodeFor(err.code), `${err.code}: ${err.message}`.slice(0, 120));
    this.finish(err, err.code);
  }

  private onMessage(data: unknown, isBinary: boolean): void {
    const receivedAt = performance.now();
    try {
      const msg = parseWorkerMessage(data, isBinary);
      if (msg.type === 'bye') {
        this.log.info({ reason: msg.reason }, 'worker said bye');
        this.ws.close(1000, 'bye');
        return;
      }
      if (msg.type === 'error') {
        this.log.warn({ code: msg.code }, `worker reported: ${msg.message}`);
        this.ws.close(closeCodeFor(msg.code), msg.code);
        return;
      }
      if (msg.type !== 'gradients') throw new GanError('BAD_MESSAGE', `unexpected ${msg.type} message from a joined worker`);
      if (this.abandoned.delete(msg.round)) {
        this.log.info({ round: msg.round }, 'late reply dropped');
        this.opts.onLateReply(msg.round);
        return;
      }
      const pending = this.pending;
      if (!pending) throw new GanError('STALE_REPLY', `reply for round ${msg.round} while no round is pending`);
      const reply = this.validate(msg, pending.task, receivedAt, frameSize(data));
      this.pending = undefined;
      this.missedInARow = 0;
      this.lastRoundMs = reply.computeMs;
      this.rounds += 1;
      pending.resolve(reply);
    } catch (err) {
      this.reject(isGanError(err) ? err : new GanError('INTERNAL', String(err)));
    }
  }

  private validate(msg: Gradients, task: SlotTask, receivedAt: number, bytes: number): Reply {
    if (msg.round !== task.round || msg.phase !== task.phase) {
      throw new GanError('STALE_REPLY', `reply for round ${msg.round}/${msg.phase}, expected ${task.round}/${task.phase}`);
    }
    if (msg.samples !== task.batchSize) throw new GanError('BAD_MESSAGE', `samples ${msg.samples}, expected ${task.batchSize}`);
    checkLoss(msg.loss);
    const expected = specsOf(this.preset, task.phase).map((s) => ({ name: s.name, shape: s.shape }));
    // Views of the received frame, not copies: the round uses them before this worker's next reply arrives.
    const grads = decodeTensors(msg.grads, { expected });
    const norm = gradientNorm(grads);
    let stats: Map<string, Float32Array> | undefined;
    if (task.phase === 'G' && this.preset.batchNorms.length > 0) {
      if (!msg.stats) throw new GanError('BAD_MESSAGE', 'G reply without batch-norm statistics');
      const statSpecs = this.preset.batchNorms.map((bn) => {
        const spec = this.preset.params.find((p) => p.name === bn.movingMean);
        return { name: bn.layer, shape: [2 * sizeOf(spec?.shape ?? [0])] };
      });
      const decoded = decodeTensors(msg.stats, { expected: statSpecs });
      for (const t of decoded) checkBatchNormStats(t.name, t.values);
      stats = new Map(decoded.map((t) => [t.name, t.values]));
    }
    return {
      worker: this.id,
      norm,
      samples: msg.samples,
      loss: msg.loss,
      grads: new Map(grads.map((t) => [t.name, t.values])),
      ...(stats ? { stats } : {}),
      computeMs: msg.computeMs,
      receivedAt,
      bytes,
    };
  }

  private onClose(code: number, reason: string): void {
    if (this.closed) return;
    this.log.info({ code, reason }, 'worker disconnected');
    this.finish(new GanError('WORKER_LOST', `worker ${this.id} disconnected (${code})`), reason || `closed (${code})`);
  }

  private finish(err: GanError, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.stopHeartbeat();
    clearTimeout(this.stragglerTimer);
    this.pending?.reject(err);
    this.pending = undefined;
    this.opts.onClosed(this, reason);
  }
}

function frameSize(data: unknown): number {
  if (Array.isArray(data)) return data.reduce((n: number, b: Uint8Array) => n + b.byteLength, 0);
  return (data as ArrayBuffer | Uint8Array).byteLength;
}
