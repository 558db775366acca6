import type { WebSocket } from 'ws';
import {
  GanError,
  type Gradients,
  type PeerRole,
  type SharedAnswer,
  type RestEntry,
  type NamedSums,
  type Sums,
  type TreeNode,
  closeCodeFor,
  decodeSums,
  decodeTensors,
  encodeIndices,
  encodeMessage,
  frameHead,
  isGanError,
  parseWorkerMessage,
  type CoordinatorToWorker,
  type WireDtype,
  type WorkerToCoordinator,
} from '@ganfleet/shared/wire';
import { FrameJoiner, type SharedRegion } from '@ganfleet/shared/link';
import type { Logger } from '@ganfleet/shared/log';
import { type ModelPreset, type SumTerm, batchNormStatSpecs, specsOf } from '@ganfleet/shared/model';
import { type CopyOut, MAX_GRADIENT, MAX_STAT, checkBatchNormStats, checkLoss, checkSums, gradientNorm } from './contributionChecks.js';
import { type Contribution, batchContribution } from './paramStore.js';
import type { BodySink, SharedBody } from './updateBroadcast.js';
import type { SlotTask } from './trainingRun.js';

/** A validated reply with its timing and size, as the round loop needs it. */
export interface Reply extends Contribution {
  worker: string;
  /** L2 norm of all its (mean) gradients, for screening against the others. */
  norm: number;
  /** Which of the tasks it was given were computed (a relay whose children were lost answers for fewer; 0 samples: none). */
  used: number[];
  computeMs: number;
  receivedAt: number;
  bytes: number;
  /** It came through shared memory, not the socket. */
  viaSharedMemory: boolean;
}

/**
 * Whether this connection's round frames go through shared memory (link/sharedRegion.ts): none
 * (the socket carries them), offered in the welcome (awaiting the worker's answer), or in use
 * (with the watch on the worker's doorbell, stopped when the connection ends).
 */
type SharedMemoryState =
  { state: 'none' } | { state: 'offered'; region: SharedRegion; nonce: Uint8Array } | { state: 'in use'; region: SharedRegion; stopWatch: () => void };

/** How a connection's round frames travel, for /status and the dashboard. */
export type Transport = 'websocket' | 'shared memory';

/** When and how a reply came. */
type Arrival = Pick<Reply, 'receivedAt' | 'bytes' | 'viaSharedMemory'>;

interface Pending {
  tasks: SlotTask[];
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
  /** A worker computes one slot per round; a relay as many as it has leaves. */
  role: PeerRole;
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
  /** A relay's number of leaves changed. */
  onSlotsChanged: () => void;
  /** Shared memory offered in the welcome (a worker on this machine). */
  shared?: { region: SharedRegion; nonce: Uint8Array };
  /** A relay may send its gradient sums rounded to float32 (the run's relaySums); else only exact float64 ones are accepted. */
  roundedSums?: boolean;
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
  readonly role: PeerRole;
  /** Slots it takes in a round: 1 for a worker; a relay's leaves (0 until it has some). */
  slots: number;
  /** A relay's members as it last reported them, and its own side of its last round. */
  subtree: TreeNode[] = [];
  relayRound: Sums['relay'];
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
  /** Joins its fragmented replies into a reused buffer (see FrameJoiner). */
  private readonly joiner = new FrameJoiner();
  private shared: SharedMemoryState;

  constructor(private readonly opts: WorkerConnectionOptions) {
    ({ id: this.id, joinSeq: this.joinSeq, ws: this.ws, info: this.info, preset: this.preset, wireDtype: this.wireDtype, log: this.log } = opts);
    this.syncedVersion = opts.syncedVersion;
    this.role = opts.role;
    this.slots = opts.role === 'worker' ? 1 : 0;
    this.shared = opts.shared ? { state: 'offered', ...opts.shared } : { state: 'none' };
    const ws = this.ws;
    ws.binaryType = 'fragments';
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
    const round = (this.pending.tasks[0] as SlotTask).round;
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

  get transport(): Transport {
    return this.shared.state === 'in use' ? 'shared memory' : 'websocket';
  }

  send(msg: CoordinatorToWorker): number {
    const bytes = encodeMessage(msg);
    this.ws.send(bytes);
    return bytes.byteLength;
  }

  /**
   * Sends a round's tasks (one for a worker, up to its leaves for a relay) and awaits its reply.
   * With `update`, the parameters changed since this worker last synced (a body shared with the
   * other workers that need the same), only the header goes now, as the message's first fragment:
   * the returned sink sends the body's pieces as UpdateBroadcast writes them.
   */
  request(
    tasks: SlotTask[],
    update: SharedBody | undefined,
    version: number,
    /** For a relay: how long it has to answer. */
    deadlineMs: number,
    onSent: (body: SharedBody) => void,
  ): { bytesSent: number; reply: Promise<Reply>; sink?: BodySink; into?: Uint8Array } {
    if (this.closed) return { bytesSent: 0, reply: Promise.reject(new GanError('WORKER_LOST', `worker ${this.id} is gone`)) };
    const reply = new Promise<Reply>((resolve, reject) => (this.pending = { tasks, resolve, reject }));
    const first = tasks[0] as SlotTask;
    this.lastRound = first.round;
    const indices = first.indices ? tasks.flatMap((t) => [...(t.indices as Uint32Array)]) : undefined;
    const head = frameHead({
      type: 'round',
      round: first.round,
      phase: first.phase,
      batchSize: first.batchSize,
      seeds: encodeIndices(tasks.map((t) => t.seed)),
      ...(indices ? { indices: encodeIndices(indices) } : {}),
      ...(this.role === 'relay' ? { deadlineMs: Math.round(deadlineMs) } : {}),
      ...(update ? { update: update.manifest } : {}),
    });
    // The last reply has been used by now (the round it answered is complete): its buffer serves the next.
    this.joiner.release();
    this.syncedVersion = version;
    const bytesSent = head.byteLength + (update?.bytes.byteLength ?? 0);
    if (this.shared.state === 'in use' && bytesSent <= this.shared.region.bytes)
      return { bytesSent, reply, ...this.requestShared(this.shared.region, head, update, onSent) };
    this.ws.send(head, { binary: true, fin: !update });
    if (!update) return { bytesSent, reply };
    update.inFlight += 1;
    const sink: BodySink = (piece, last) => this.ws.send(piece, { binary: true, fin: last }, last ? () => onSent(update) : undefined);
    return { bytesSent, reply, sink };
  }

  /**
   * The round's frame into the region's first half (the worker has read the last one: it replied):
   * the header, then the doorbell, then the body as UpdateBroadcast writes it, each piece published
   * as it lands (the worker reads no further than published: SharedRegion.waitWritten).
   */
  private requestShared(
    region: SharedRegion,
    head: Uint8Array,
    update: SharedBody | undefined,
    onSent: (body: SharedBody) => void,
  ): { sink?: BodySink; into?: Uint8Array } {
    region.down.set(head);
    if (!update) {
      region.announce('down', head.byteLength);
      return {};
    }
    update.inFlight += 1;
    let at = head.byteLength;
    const into = region.down.subarray(at, at + update.bytes.byteLength);
    region.announce('down', at + update.bytes.byteLength, at);
    const sink: BodySink = (piece, last) => {
      // A body written straight into the region (its only destination) is there already.
      if (piece.buffer !== into.buffer) region.down.set(piece, at);
      at += piece.byteLength;
      region.publish('down', at);
      if (last) onSent(update);
    };
    return { sink, into };
  }

  /** The worker mapped the offered region (its nonce matches) or declined: the file's name goes either way. */
  private onSharedAnswer(msg: SharedAnswer): void {
    if (this.shared.state !== 'offered') throw new GanError('BAD_MESSAGE', 'sharedAnswer without an offer');
    const { region, nonce } = this.shared;
    region.unlink();
    if (msg.nonce === undefined || Buffer.compare(msg.nonce, nonce) !== 0) {
      this.shared = { state: 'none' };
      this.log.info({ reason: msg.declined ?? 'its nonce is not the region’s' }, 'shared memory declined: round frames over the socket');
      return;
    }
    this.shared = { state: 'in use', region, stopWatch: region.watch('up', () => this.onSharedReply(region)) };
    this.log.info({ path: region.path, bytes: region.bytes }, 'round frames through shared memory');
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
    this.receive(false, () => ({ msg: parseWorkerMessage(this.joiner.join(data), isBinary), bytes: frameSize(data) }));
  }

  /**
   * The worker rang: its reply is in the region's second half. The worker can still write there,
   * and what is checked must be what is used: the header is parsed in place (into objects of this
   * process), and each tensor is copied out in the pass that checks it (copyOut), to the same
   * offset in a lent buffer.
   */
  private onSharedReply(region: SharedRegion): void {
    this.receive(true, () => {
      const frame = region.announced('up');
      const msg = parseWorkerMessage(frame);
      if (msg.type !== 'gradients' && msg.type !== 'sums') throw new GanError('BAD_MESSAGE', `${msg.type} in shared memory`);
      return { msg, bytes: frame.byteLength, copyOut: sameOffsetIn(frame, this.joiner.reserve(frame.byteLength)) };
    });
  }

  /**
   * One message from the worker, as `read` takes and parses it (with copyOut where its tensors are
   * still in memory the worker writes): any error closes the connection with its code.
   */
  private receive(viaSharedMemory: boolean, read: () => { msg: WorkerToCoordinator; bytes: number; copyOut?: CopyOut }): void {
    if (this.closed) return;
    const receivedAt = performance.now();
    /** A reply the round uses keeps its buffer until the next request; anything else gives it back at once. */
    let kept = false;
    try {
      const { msg, bytes, copyOut } = read();
      if (msg.type === 'sharedAnswer') {
        this.onSharedAnswer(msg);
        return;
      }
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
      if (msg.type === 'leaves' && this.role === 'relay') {
        this.slots = msg.count;
        this.subtree = msg.children;
        this.log.info({ leaves: msg.count }, 'relay leaves');
        this.opts.onSlotsChanged();
        return;
      }
      const expected = this.role === 'worker' ? 'gradients' : 'sums';
      if (msg.type !== expected) throw new GanError('BAD_MESSAGE', `unexpected ${msg.type} message from a joined ${this.role}`);
      if (this.abandoned.delete(msg.round)) {
        this.log.info({ round: msg.round }, 'late reply dropped');
        this.opts.onLateReply(msg.round);
        return;
      }
      const pending = this.pending;
      if (!pending) throw new GanError('STALE_REPLY', `reply for round ${msg.round} while no round is pending`);
      const arrival = { receivedAt, bytes, viaSharedMemory };
      const reply =
        msg.type === 'gradients' ? this.validate(msg, pending.tasks[0] as SlotTask, arrival, copyOut) : this.validateSums(msg, pending.tasks, arrival, copyOut);
      this.pending = undefined;
      this.missedInARow = 0;
      this.lastRoundMs = reply.computeMs;
      this.rounds += 1;
      kept = true;
      pending.resolve(reply);
    } catch (err) {
      this.reject(isGanError(err) ? err : new GanError('INTERNAL', String(err)));
    } finally {
      if (!kept) this.joiner.release();
    }
  }

  private validate(msg: Gradients, task: SlotTask, arrival: Arrival, copyOut?: CopyOut): Reply {
    if (msg.round !== task.round || msg.phase !== task.phase) {
      throw new GanError('STALE_REPLY', `reply for round ${msg.round}/${msg.phase}, expected ${task.round}/${task.phase}`);
    }
    if (msg.samples !== task.batchSize) throw new GanError('BAD_MESSAGE', `samples ${msg.samples}, expected ${task.batchSize}`);
    checkLoss(msg.loss);
    const expected = specsOf(this.preset, task.phase).map((s) => ({ name: s.name, shape: s.shape }));
    // Views of the received frame (or, from shared memory, of the copies gradientNorm makes as it checks them): their
    // buffer is not reused before the next request (see FrameJoiner).
    const grads = decodeTensors(msg.grads, { expected });
    const norm = gradientNorm(grads, copyOut);
    let stats: Map<string, Float32Array> | undefined;
    if (task.phase === 'G' && this.preset.batchNorms.length > 0) {
      if (!msg.stats) throw new GanError('BAD_MESSAGE', 'G reply without batch-norm statistics');
      const decoded = decodeTensors(msg.stats, { expected: batchNormStatSpecs(this.preset) });
      for (const t of decoded) {
        if (copyOut) t.values = copied(t.values, copyOut);
        checkBatchNormStats(t.name, t.values);
      }
      stats = new Map(decoded.map((t) => [t.name, t.values]));
    }
    const batch = { samples: msg.samples, loss: msg.loss, grads: new Map(grads.map((t) => [t.name, t.values])), ...(stats ? { stats } : {}) };
    return { ...batchContribution(batch), worker: this.id, norm, used: [0], computeMs: msg.computeMs, ...arrival };
  }

  /** A relay's sums: for tasks it was given, each within the range its samples allow, its rest pointing inside the tensors. */
  private validateSums(msg: Sums, tasks: readonly SlotTask[], arrival: Arrival, copyOut?: CopyOut): Reply {
    const task = tasks[0] as SlotTask;
    if (msg.round !== task.round || msg.phase !== task.phase) {
      throw new GanError('STALE_REPLY', `reply for round ${msg.round}/${msg.phase}, expected ${task.round}/${task.phase}`);
    }
    const used = msg.used;
    if (used.some((k, i) => k >= tasks.length || (i > 0 && k <= (used[i - 1] as number))))
      throw new GanError('BAD_MESSAGE', `used slots ${JSON.stringify(used.slice(0, 8))} are not increasing indices below ${tasks.length}`);
    if (msg.samples !== used.length * task.batchSize) throw new GanError('BAD_MESSAGE', `samples ${msg.samples}, expected ${used.length * task.batchSize}`);
    this.relayRound = msg.relay;
    const base = { worker: this.id, samples: msg.samples, loss: msg.loss, used, computeMs: msg.computeMs, ...arrival };
    if (msg.samples === 0) return { ...base, norm: 0, grads: new Map() };
    checkLoss(msg.loss);
    const specs = specsOf(this.preset, task.phase);
    const sums = decodeSums(msg.sums as NonNullable<Sums['sums']>, {
      expected: specs.map((s) => ({ name: s.name, shape: s.shape })),
      float32: this.opts.roundedSums ?? false,
    });
    const { terms: grads, squares } = sumsAsTerms(sums, msg.rest, msg.samples * MAX_GRADIENT, 'sums', copyOut);
    let stats: Map<string, SumTerm> | undefined;
    if (task.phase === 'G' && this.preset.batchNorms.length > 0) {
      if (!msg.stats) throw new GanError('BAD_MESSAGE', 'G reply without batch-norm sums');
      const decoded = decodeSums(msg.stats, { expected: batchNormStatSpecs(this.preset) });
      stats = sumsAsTerms(decoded, msg.statsRest, msg.samples * MAX_STAT, 'batch-norm sums', copyOut).terms;
    }
    return { ...base, norm: Math.sqrt(squares) / msg.samples, grads, ...(stats ? { stats } : {}) };
  }

  private onClose(code: number, reason: string): void {
    if (this.closed) return;
    this.log.info({ code, reason }, 'worker disconnected');
    this.finish(new GanError('WORKER_LOST', `worker ${this.id} disconnected (${code})`), reason || `closed (${code})`);
  }

  private finish(err: GanError, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.shared.state === 'offered') this.shared.region.unlink();
    if (this.shared.state === 'in use') this.shared.stopWatch();
    this.shared = { state: 'none' };
    this.stopHeartbeat();
    clearTimeout(this.stragglerTimer);
    this.pending?.reject(err);
    this.pending = undefined;
    this.opts.onClosed(this, reason);
  }
}

/** Bytes of a message as ws hands it over (one buffer, or a fragmented message's chunks). */
export function frameSize(data: unknown): number {
  if (Array.isArray(data)) return data.reduce((n: number, b: Uint8Array) => n + b.byteLength, 0);
  return (data as ArrayBuffer | Uint8Array).byteLength;
}

/**
 * CopyOut for tensors read from `frame`: a view of it is copied to the same offset in `room`, so it
 * keeps its alignment; values decoded into arrays of their own (float16) stay where they are.
 */
function sameOffsetIn(frame: Uint8Array, room: Uint8Array<ArrayBuffer>): CopyOut {
  return (values) => {
    if (values.buffer !== frame.buffer) return undefined;
    const offset = values.byteOffset - frame.byteOffset;
    if (offset < 0 || offset + values.byteLength > frame.byteLength) throw new GanError('INTERNAL', 'a tensor outside the frame it was read from');
    const View = values.constructor as new (buffer: ArrayBuffer, byteOffset: number, length: number) => typeof values;
    return new View(room.buffer, room.byteOffset + offset, values.length);
  };
}

/** `values` copied out (see CopyOut) in one pass, for small arrays that are checked on their own. */
function copied<A extends Float32Array | Float64Array>(values: A, copyOut: CopyOut): A {
  const into = copyOut(values);
  into?.set(values);
  return into ?? values;
}

/**
 * Sums as terms of the round's sum (weight 1), with their rest, every value finite and within
 * ±limit (with copyOut: copied out as they are checked); and their sum of squares.
 */
function sumsAsTerms(
  sums: readonly NamedSums[],
  rest: RestEntry[] | undefined,
  limit: number,
  what: string,
  copyOut?: CopyOut,
): { terms: Map<string, SumTerm>; squares: number } {
  const rests = sums.map(() => new Map<number, number[]>());
  for (const [t, i, ...components] of rest ?? []) {
    const tensor = sums[t as number];
    if (!tensor || (i as number) >= tensor.values.length) throw new GanError('BAD_MESSAGE', `${what}: rest entry [${t}, ${i}] is outside the tensors`);
    if (rests[t as number]?.has(i as number)) throw new GanError('BAD_MESSAGE', `${what}: rest entry [${t}, ${i}] repeated`);
    checkSums(tensor.name, Float64Array.from(components), limit);
    rests[t as number]?.set(i as number, components);
  }
  let squares = 0;
  const terms = new Map(
    sums.map((s, k) => {
      const checked = checkSums(s.name, s.values, limit, copyOut);
      squares += checked.squares;
      const r = rests[k] as Map<number, number[]>;
      return [s.name, { values: checked.values, weight: 1, ...(r.size ? { rest: r } : {}) }];
    }),
  );
  return { terms, squares };
}
