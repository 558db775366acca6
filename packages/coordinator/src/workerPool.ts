import type { WebSocket } from 'ws';
import { GanError, type Hello, type Phase, type RunDescriptor, type Sums, type TreeNode, type WireDtype, encodeTensors } from '@ganfleet/shared/wire';
import type { Logger } from '@ganfleet/shared/log';
import { SharedRegion } from '@ganfleet/shared/link';
import type { SharedMemoryCalls } from '@ganfleet/shared/backends';
import { type ModelPreset, batchNormStatSpecs, countParams, sizeOf } from '@ganfleet/shared/model';
import { isLoopback } from './authGate.js';
import { ContributionScreen } from './contributionScreen.js';
import type { RunEvents } from './events.js';
import type { ComputedRound, SlotComputer } from './runLoop.js';
import type { RunSettings } from './settings.js';
import type { SlotTask } from './trainingRun.js';
import { type ParamSource, UpdateBroadcast } from './updateBroadcast.js';
import { type Reply, type Transport, WorkerConnection } from './workerConnection.js';

export interface WorkerStatus {
  id: string;
  role: 'worker' | 'relay';
  /** Slots it computes per round: 1, or a relay's leaves. */
  slots: number;
  backend: string;
  device: string;
  joinedAt: string;
  lastComputeMs: number;
  rounds: number;
  status: 'computing' | 'idle' | 'late';
  /** How its round frames travel: shared memory for a worker on this machine that could map it. */
  transport: Transport;
  /** A relay's members (and theirs), and its own side of its last round. */
  children?: TreeNode[];
  relay?: Sums['relay'];
}

/**
 * What the pool needs of the run whose rounds it computes: the coordinator's TrainingRun, or at a
 * relay the round its parent sent (whose plan is the parent's tasks for the relay's slots).
 */
export interface PoolRun {
  readonly preset: ModelPreset;
  readonly store: ParamSource;
  readonly round: number;
  readonly phase: Phase;
  /** The tasks of `slots` slots, in slot order (fewer at a relay that was given fewer). */
  plan(slots: number): SlotTask[];
}

/** What the pool's own settings are: the run's, less what only the coordinator uses. */
export type PoolSettings = Pick<RunSettings, 'wireDtype' | 'heartbeatMs' | 'minWorkers' | 'roundTimeoutS' | 'minRoundTimeoutS' | 'outlierRatio' | 'aggregate'>;

/** Room in a shared region's half for a frame's header and padding (a round's indices, the manifests). */
const SHARED_HEADER_ROOM = 1024 * 1024;

/** The part of its deadline a pool gives a relay below it to close its own round in. */
const RELAY_SHARE = 0.8;

/** Rounds per phase whose durations set the adaptive deadline. */
const DEADLINE_HISTORY = 20;
/** The adaptive deadline is this multiple of the phase's median round. */
const DEADLINE_FACTOR = 10;
/** Before a phase has 3 rounds of history (start-up, a restart: compilation, full parameter sync). */
const STARTUP_DEADLINE_MS = 60_000;
/** A worker that missed a deadline and has not replied this many deadlines later is dropped. */
const STRAGGLER_GRACE = 3;

/**
 * The run's remote workers (and relays): who is in it, and each round's slots computed by them
 * (slots go to members in join order, one each, a relay as many as its leaves, so a run is
 * reproducible). A round waits until at least
 * `minWorkers` are connected, sends every member its task with the parameters it lacks, and
 * closes over the replies that arrived before its deadline (see RunSettings.roundTimeoutS), so a
 * worker that hangs costs the run one deadline. Replies are range-checked as they arrive
 * (WorkerConnection) and screened against each other here; a worker whose reply fails is dropped
 * with a coded reason and the round goes on with the others.
 */
export class WorkerPool implements SlotComputer {
  private readonly workers = new Map<string, WorkerConnection>();
  private joinSeq = 0;
  private membershipChanged: (() => void) | undefined;
  private stopping = false;
  private readonly screen: ContributionScreen;
  private readonly broadcast: UpdateBroadcast;
  /** Recent round durations (send to last reply) per phase. */
  private readonly durations: Record<Phase, number[]> = { D: [], G: [] };

  constructor(
    private readonly settings: PoolSettings,
    /** Where a joining member's parameters and round come from. */
    private readonly source: Pick<PoolRun, 'preset' | 'store'> & { round(): number },
    /** The run a member joins, as its welcome describes it (the wire dtype is each member's). */
    private readonly descriptor: () => Omit<RunDescriptor, 'wireDtype'>,
    private readonly events: RunEvents,
    private readonly log: Logger,
    /** Memory shared with workers on this machine (the native addon's mapping and doorbells); without it, sockets only. */
    private readonly sharedMemory?: SharedMemoryCalls,
  ) {
    this.screen = new ContributionScreen(settings.outlierRatio);
    this.broadcast = new UpdateBroadcast(source.preset);
  }

  /** Called whenever membership or a relay's leaves change (a relay reports its own leaves upward). */
  onChange: (() => void) | undefined;

  private changed(): void {
    this.membershipChanged?.();
    this.onChange?.();
  }

  /** Slots the members can compute in the next round. */
  get slots(): number {
    return this.members().reduce((n, w) => n + w.slots, 0);
  }

  status(): WorkerStatus[] {
    return [...this.workers.values()].map((w) => ({
      id: w.id,
      role: w.role,
      slots: w.slots,
      backend: w.info.backend,
      device: w.info.device,
      joinedAt: w.joinedAt.toISOString(),
      lastComputeMs: w.lastRoundMs,
      rounds: w.rounds,
      status: w.behind ? 'late' : w.busy ? 'computing' : 'idle',
      transport: w.transport,
      ...(w.role === 'relay' ? { children: w.subtree, ...(w.relayRound ? { relay: w.relayRound } : {}) } : {}),
    }));
  }

  /**
   * Admits a worker that said a valid, authorised hello: welcome with all parameters (and shared
   * memory, to a worker on this machine that can map it), then it joins the next round.
   */
  admit(ws: WebSocket, hello: Hello, remote: string): void {
    const { source: run, settings } = this;
    if (hello.role === 'relay' && settings.aggregate !== 'mean')
      throw new GanError('CONFIG_INVALID', `--aggregate ${settings.aggregate} needs every worker's own gradients; relays send sums`);
    // The configured encoding when the worker can decode it, else the other one it offers.
    const wanted = settings.wireDtype;
    const wireDtype: WireDtype = hello.capabilities.wireDtypes.includes(wanted) ? wanted : (hello.capabilities.wireDtypes[0] ?? 'float32');
    const id = `${hello.role === 'relay' ? 'r' : 'w'}${++this.joinSeq}`;
    const store = run.store;
    const shared = hello.role === 'worker' && hello.capabilities.sharedMemory && isLoopback(remote) ? this.sharedRegion(id) : undefined;
    const worker = new WorkerConnection({
      id,
      joinSeq: this.joinSeq,
      ws,
      role: hello.role,
      info: { backend: hello.backend, device: hello.device },
      preset: run.preset,
      wireDtype,
      syncedVersion: store.version,
      heartbeatMs: settings.heartbeatMs,
      log: this.log.child({ worker: id }),
      onClosed: (w, reason) => this.onWorkerClosed(w, reason),
      onLateReply: (round) => {
        this.events.emit('replyDropped', { worker: id, round, reason: 'late' });
        this.changed();
      },
      onSlotsChanged: () => this.changed(),
      ...(shared ? { shared } : {}),
      roundedSums: this.descriptor().relaySums === 'float32',
    });
    const all = run.preset.params.map((s) => ({ name: s.name, shape: s.shape, values: store.params.get(s.name) as Float32Array }));
    worker.send({
      type: 'welcome',
      workerId: id,
      round: run.round(),
      params: encodeTensors(all, wireDtype),
      run: { ...this.descriptor(), wireDtype },
      ...(shared ? { shared: { path: shared.region.path, bytes: shared.region.bytes } } : {}),
    });
    this.workers.set(id, worker);
    this.log.info({ worker: id, role: hello.role, backend: hello.backend, device: hello.device, workers: this.workers.size }, `${hello.role} joined`);
    this.events.emit('workerJoined', { worker: id, backend: hello.backend, device: hello.device });
    this.changed();
  }

  /**
   * A region for a worker's round frames: each half holds every parameter (or gradient) as float32
   * and the batch-norm statistics, plus room for the header; a larger frame goes over the socket.
   */
  private sharedRegion(id: string): { region: SharedRegion; nonce: Uint8Array } | undefined {
    if (!this.sharedMemory) return undefined;
    const { preset } = this.source;
    const values = countParams(preset) + batchNormStatSpecs(preset).reduce((n, s) => n + sizeOf(s.shape), 0);
    try {
      return SharedRegion.create(this.sharedMemory, 4 * values + SHARED_HEADER_ROOM);
    } catch (err) {
      this.log.info({ worker: id, err: err instanceof Error ? err.message : String(err) }, 'no shared memory for this worker: round frames over the socket');
      return undefined;
    }
  }

  /** Ends waiting for workers; the round in progress (if any) is abandoned by the run loop. */
  stop(): void {
    this.stopping = true;
    this.changed();
    for (const w of this.workers.values()) w.stopHeartbeat();
  }

  /** Tells every worker that training is over. */
  finish(): void {
    for (const w of this.workers.values()) w.send({ type: 'bye', reason: 'training finished' });
  }

  /**
   * The round's contributions; undefined if none could be had. A relay passes its parent's
   * `deadlineMs` (its own share of it) and does not wait for members: it answers at once instead.
   */
  async computeRound(run: PoolRun, relayDeadlineMs?: number): Promise<ComputedRound | undefined> {
    const members = relayDeadlineMs === undefined ? await this.waitForWorkers() : this.members();
    if (!members || members.length === 0) return undefined;
    const phase = run.phase;
    const started = performance.now();
    const planned = members.reduce((n, w) => n + w.slots, 0);
    const tasks = run.plan(planned);
    // Consecutive slots per member, in join order; at a relay given fewer tasks, the last members sit out.
    let next = 0;
    const assigned = members
      .map((w) => {
        const first = next;
        next += w.slots;
        return { w, first, tasks: tasks.slice(first, first + w.slots) };
      })
      .filter((a) => a.tasks.length > 0);
    const store = run.store;
    const deadlineMs = relayDeadlineMs ?? this.deadlineMs(phase);
    let bytesOut = 0;
    const bodies = this.broadcast.round(store);
    const replies = assigned.map(({ w, tasks: mine }) => {
      const body = bodies.bodyFor(w.syncedVersion, w.dtype);
      // A relay below gets its share of this deadline, less what its own reply takes to come back.
      const r = w.request(mine, body, store.version, RELAY_SHARE * deadlineMs, (b) => this.broadcast.sent(b));
      if (body && r.sink) bodies.to(body, r.sink, r.into);
      bytesOut += r.bytesSent;
      return r.reply;
    });
    // The replies are watched (and the deadline runs) while the bodies are written and sent.
    const collected = this.collect(replies, deadlineMs);
    await bodies.stream();
    const broadcastMs = performance.now() - started;
    const settled = await collected;
    const late = assigned.filter((a, i) => settled[i]?.status === 'rejected' && a.w.isOpen).map((a) => a.w);
    for (const w of late) {
      this.log.warn({ code: 'STRAGGLER', worker: w.id, round: run.round, deadlineMs: Math.round(deadlineMs) }, 'worker missed the round deadline: it sits out');
      w.abandonRound(STRAGGLER_GRACE * deadlineMs);
    }
    // A relay none of whose children answered replies with no samples: nothing to use, nothing to hold against it.
    const answered = settled.flatMap((s, k) =>
      s.status === 'fulfilled' && s.value.samples > 0 ? [{ first: (assigned[k] as (typeof assigned)[number]).first, reply: s.value }] : [],
    );
    const { used, refused, normRatio } = this.screenReplies(phase, run.round, answered);
    if (used.length === 0) {
      this.log.warn({ round: run.round }, 'no worker completed the round; retrying it');
      return undefined;
    }
    const usedSlots = used.flatMap((u) => u.reply.used.map((k) => u.first + k));
    if (usedSlots.length < tasks.length)
      this.log.warn({ round: run.round, lost: tasks.length - usedSlots.length, late: late.length, refused }, 'round closed over the workers that answered');
    else this.remember(phase, performance.now() - started);
    const contributions = used.map((u) => u.reply);
    return {
      contributions,
      timing: {
        ...timingOf(contributions, { broadcastMs, bytesOut, dropped: late.length }),
        refused,
        normRatio,
        planned,
        used: usedSlots,
      },
    };
  }

  /** The round's deadline: --round-timeout, or ten times the phase's median round (at least the floor). */
  private deadlineMs(phase: Phase): number {
    if (this.settings.roundTimeoutS > 0) return this.settings.roundTimeoutS * 1000;
    const recent = this.durations[phase];
    const floor = this.settings.minRoundTimeoutS * 1000;
    if (recent.length < 3) return Math.max(STARTUP_DEADLINE_MS, floor);
    const sorted = [...recent].sort((a, b) => a - b);
    return Math.max(floor, DEADLINE_FACTOR * (sorted[sorted.length >> 1] as number));
  }

  private remember(phase: Phase, ms: number): void {
    const recent = this.durations[phase];
    recent.push(ms);
    if (recent.length > DEADLINE_HISTORY) recent.shift();
  }

  /** The replies the round uses, in slot order: outliers by gradient norm are refused and their workers dropped. */
  private screenReplies(
    phase: Phase,
    round: number,
    answered: { first: number; reply: Reply }[],
  ): { used: typeof answered; refused: number; normRatio: number } {
    const { outliers, ratios, reference, limit } = this.screen.screen(
      phase,
      answered.map((a) => a.reply.norm),
    );
    for (const i of outliers) {
      const { reply } = answered[i] as (typeof answered)[number];
      const ratio = ratios[i] as number;
      const message = `gradient norm ${reply.norm.toPrecision(3)} is ${ratio.toPrecision(3)} times the median ${reference.toPrecision(3)} (limit ${limit})`;
      this.workers.get(reply.worker)?.reject(new GanError('OUTLIER', message));
      this.events.emit('replyDropped', { worker: reply.worker, round, reason: 'OUTLIER' });
    }
    const used = answered.filter((_, i) => !outliers.includes(i));
    this.screen.accept(
      phase,
      used.map((u) => u.reply.norm),
    );
    const usedRatios = ratios.filter((_, i) => !outliers.includes(i));
    return { used, refused: outliers.length, normRatio: usedRatios.length ? Math.max(...usedRatios) : 0 };
  }

  /** Members that take part in the next round, in join order (slot order); a relay without leaves has no slot. */
  private members(): WorkerConnection[] {
    return [...this.workers.values()].filter((w) => w.isOpen && !w.behind && w.slots > 0).sort((a, b) => a.joinSeq - b.joinSeq);
  }

  private onWorkerClosed(w: WorkerConnection, reason: string): void {
    if (!this.workers.delete(w.id)) return;
    this.log.info({ worker: w.id, reason, lastRound: w.lastRound, workers: this.workers.size }, 'worker left');
    this.events.emit('workerLeft', { worker: w.id, reason, lastRound: w.lastRound });
    this.changed();
  }

  /** The members once there are enough of them; undefined once stopped. */
  private async waitForWorkers(): Promise<WorkerConnection[] | undefined> {
    let paused = false;
    while (!this.stopping) {
      const members = this.members();
      const slots = members.reduce((n, w) => n + w.slots, 0);
      if (slots >= Math.max(1, this.settings.minWorkers)) {
        if (paused) {
          this.log.info({ workers: slots }, 'training resumed');
          this.events.emit('resumed', { workers: slots });
        }
        return members;
      }
      if (!paused) {
        this.log.info({ workers: slots, minWorkers: this.settings.minWorkers }, 'training paused: waiting for workers');
        this.events.emit('paused', { workers: slots, minWorkers: this.settings.minWorkers });
        paused = true;
      }
      await new Promise<void>((resolve) => (this.membershipChanged = resolve));
    }
    return undefined;
  }

  /** Waits for all replies, or until the deadline; late ones count as rejected. */
  private async collect(replies: Promise<Reply>[], deadlineMs: number): Promise<PromiseSettledResult<Reply>[]> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, deadlineMs)));
    const results: PromiseSettledResult<Reply>[] = replies.map(() => ({
      status: 'rejected',
      reason: new GanError('STRAGGLER', 'reply missed the round deadline'),
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
}

/** The round's timing as the run loop logs it: slowest compute, spread of arrivals, bytes. */
function timingOf(replies: Reply[], t: { broadcastMs: number; bytesOut: number; dropped: number }): ComputedRound['timing'] {
  const arrivals = replies.map((r) => r.receivedAt).sort((a, b) => a - b);
  const last = replies.reduce((a, b) => (b.receivedAt > a.receivedAt ? b : a));
  return {
    slots: replies.length,
    computeMs: Math.max(...replies.map((r) => r.computeMs)),
    waitMs: (arrivals.at(-1) as number) - (arrivals[0] as number),
    broadcastMs: t.broadcastMs,
    bytesOut: t.bytesOut,
    bytesIn: replies.reduce((n, r) => n + r.bytes, 0),
    viaSharedMemory: replies.filter((r) => r.viaSharedMemory).length,
    slowest: { worker: last.worker, lagMs: last.receivedAt - (arrivals[Math.floor(arrivals.length / 2)] as number) },
    dropped: t.dropped,
  };
}
