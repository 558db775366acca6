/*
 * `ganfleet relay`: a worker to its parent (the coordinator or another relay) and a coordinator to
 * its children (workers or relays). Each round it receives the parameters once, forwards them,
 * splits its tasks among its children exactly as the coordinator would split them among that many
 * workers, and answers with one reply: the exact sums of their gradients (see sumTerms), so that a
 * tree of relays trains the same parameters as the flat run over the same workers, bit for bit; or,
 * where the run says so (relaySums), those sums rounded to float32: half the bytes up.
 */
import { hostname } from 'node:os';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import {
  type CoordinatorToWorker,
  GanError,
  type Hello,
  type Leaves,
  type NamedSums,
  PROTOCOL_VERSION,
  type Phase,
  type RestEntry,
  type Round,
  type RunDescriptor,
  type SetDtypes,
  type Sums,
  type TreeNode,
  type Welcome,
  decodeIndices,
  decodeTensors,
  encodeFrame,
  encodeMessage,
  parseCoordinatorMessage,
} from '@ganfleet/shared/wire';
import { loadSharedMemory, sharedMemoryStatus, useFastestUpdateLoops } from '@ganfleet/shared/backends';
import { type Outcome, UpstreamLink, type UpstreamOptions, dial, keepConnected, sendFragmented } from '@ganfleet/shared/link';
import type { Logger } from '@ganfleet/shared/log';
import { type ModelPreset, type SumTerm, batchNormStatSpecs, getPreset, sizeOf, specsOf, sumTerms } from '@ganfleet/shared/model';
import { RunEvents } from './events.js';
import { ParamMirror } from './paramMirror.js';
import { RelayMetrics } from './relayMetrics.js';
import type { RequestGate } from './requestGate.js';
import type { ComputedRound } from './runLoop.js';
import { type Edge, type ServedNode, startEdge } from './server.js';
import type { ServerSettings } from './settings.js';
import type { SlotTask } from './trainingRun.js';
import { frameSize } from './workerConnection.js';
import { type PoolRun, type PoolSettings, WorkerPool, type WorkerStatus } from './workerPool.js';

/** How a relay joins its parent and serves its children. */
export interface RelaySettings {
  /** The parent (--connect), and the token, CA and masking used towards it. */
  upstream: UpstreamOptions;
  /** Stop retrying after the parent has been unreachable this long (seconds). */
  giveUpAfterS: number;
  /** Its own port, TLS, token and limits, for its children. */
  server: ServerSettings;
  /** Heartbeats and screening of its children (their deadline is its parent's, the wire dtype the one its parent chose). */
  pool: Pick<PoolSettings, 'heartbeatMs' | 'outlierRatio'>;
}

/** Where the relay stands with its parent: explicit, not flags. */
export type RelayState = 'connecting' | 'joined' | 'finished';

export interface RelayStatus {
  state: RelayState;
  parent: string;
  /** Its id at its parent (from the last welcome). */
  relayId?: string;
  runId?: string;
  /** Slots it offers its parent: its children's, added up. */
  leaves: number;
  children: WorkerStatus[];
  lastRound?: RelayRoundLog;
}

/** One round as the relay logs and reports it. */
export interface RelayRoundLog {
  round: number;
  phase: Phase;
  /** Tasks the parent gave, and those computed. */
  tasks: number;
  used: number;
  samples: number;
  /** From the round's arrival to the reply's departure, and the parts of it. */
  roundMs: number;
  combineMs: number;
  bytesIn: number;
  bytesOut: number;
}

export interface RelayHandle {
  status(): RelayStatus;
  /** Resolves once joined and serving (the children's port is known). */
  serving: Promise<Edge>;
  /** Resolves when the parent says the run is over; rejects on a fatal refusal or after --give-up-after. */
  done: Promise<string>;
  close(): Promise<void>;
}

/** Starts a relay: joins the parent, then serves children on its own port. */
export function startRelay(settings: RelaySettings, log: Logger): RelayHandle {
  const relay = new Relay(settings, log.child({ component: 'relay' }));
  return { status: () => relay.status(), serving: relay.serving, done: relay.done, close: () => relay.close() };
}

class Relay implements ServedNode {
  readonly kind = 'relay';
  readonly events = new RunEvents();
  private readonly metrics = new RelayMetrics(() => this.joined?.pool.slots ?? 0);
  readonly done: Promise<string>;
  readonly serving: Promise<Edge>;
  state: RelayState = 'connecting';
  private joined: { preset: ModelPreset; mirror: ParamMirror; pool: WorkerPool; descriptor: Omit<RunDescriptor, 'wireDtype'>; relayId: string } | undefined;
  private edge: Edge | undefined;
  private markServing!: (edge: Edge) => void;
  private link: UpstreamLink | undefined;
  private stopped = false;
  /** The leaves and tree last reported to the parent (JSON), to report only changes. */
  private reported = '';
  private lastRound: RelayRoundLog | undefined;
  /** The parent's round in progress (or of the last welcome), for children that join. */
  private round = 0;
  /** Float64 sums per tensor, reused round after round. */
  private readonly scratch = new Map<string, Float64Array>();
  /** The gradient sums rounded to float32, where the run asks for that (relaySums), reused likewise. */
  private readonly rounded = new Map<string, Float32Array>();
  /** The reply frame's buffer, reused once the socket has sent the last reply: a fresh one each round costs page faults. */
  private outgoing: { bytes: Uint8Array | undefined; sending: boolean } = { bytes: undefined, sending: false };

  /** The relay's log, with its id at its parent once it has one. */
  private log: Logger;
  /** The update loops in use (native where the addon loads), chosen while the relay connects. */
  private readonly loops = useFastestUpdateLoops();
  /** Memory shared with children on this machine, where the addon loads. */
  private readonly sharedMemory = loadSharedMemory();

  constructor(
    private readonly settings: RelaySettings,
    private readonly baseLog: Logger,
  ) {
    this.log = baseLog;
    this.serving = new Promise((resolve) => (this.markServing = resolve));
    this.done = keepConnected(() => this.connect(), {
      url: settings.upstream.url,
      giveUpAfterS: settings.giveUpAfterS,
      log: this.log,
      stopped: () => this.stopped,
    })
      .then((reason) => {
        // The run is over: the children may stop too. A relay that is stopped or gives up just closes, and they look for it again.
        if (!this.stopped) this.joined?.pool.finish();
        return reason;
      })
      .finally(async () => {
        this.state = 'finished';
        this.joined?.pool.stop();
        await this.edge?.close();
      });
    this.done.catch(() => undefined);
  }

  get preset(): ModelPreset {
    return (this.joined as NonNullable<Relay['joined']>).preset;
  }

  status(): RelayStatus {
    const j = this.joined;
    return {
      state: this.state,
      parent: this.settings.upstream.url,
      ...(j ? { relayId: j.relayId, runId: j.descriptor.runId, leaves: j.pool.slots, children: j.pool.status() } : { leaves: 0, children: [] }),
      ...(this.lastRound ? { lastRound: this.lastRound } : {}),
    };
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.link?.ws.close(1000, 'relay stopping');
    await this.done.catch(() => undefined);
  }

  admit(ws: WebSocket, hello: Hello, remote: string): void {
    if (!this.joined) throw new GanError('WORKER_LOST', 'relay has not joined its parent yet');
    this.joined.pool.admit(ws, hello, remote);
  }

  generator(): Promise<never> {
    return Promise.reject(new GanError('CONFIG_INVALID', 'a relay does not serve the generator: fetch it from the coordinator'));
  }

  stop(): void {
    this.joined?.pool.stop();
  }

  /** `/status` (JSON) and `/metrics` (Prometheus), behind the same gate as its children's upgrades. */
  httpHandler(gate: RequestGate, log: Logger): (req: IncomingMessage, res: ServerResponse) => void {
    const routes: Record<string, () => Promise<[string, string]>> = {
      '/status': async () => ['application/json', JSON.stringify(this.status())],
      '/metrics': async () => [this.metrics.registry.contentType, await this.metrics.registry.metrics()],
    };
    return (req, res) => {
      const reply = (status: number, type: string, body: string) =>
        void res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }).end(body);
      const admission = gate.admit(req);
      if (!admission.ok) return reply(admission.refusal.status, 'text/plain; charset=utf-8', `${admission.refusal.message}\n`);
      const route = routes[admission.url.pathname];
      if (!route) return reply(404, 'text/plain; charset=utf-8', 'not found\n');
      route().then(
        ([type, body]) => reply(200, type, body),
        (err: unknown) => {
          log.error({ code: 'INTERNAL', err: err instanceof Error ? err.message : String(err) }, 'HTTP handler failed');
          reply(500, 'text/plain; charset=utf-8', 'internal error\n');
        },
      );
    };
  }

  describe(): Record<string, unknown> {
    return { parent: this.settings.upstream.url, preset: this.preset.name };
  }

  /** One connection to the parent, to its end. */
  private async connect(): Promise<Outcome> {
    const ws = dial(this.settings.upstream);
    const link = new UpstreamLink(
      ws,
      Boolean(this.settings.upstream.token),
      () => this.log,
      (data, isBinary) => this.onMessage(data, isBinary),
    );
    this.link = link;
    this.reported = '';
    ws.on('open', () =>
      ws.send(
        encodeMessage({
          type: 'hello',
          version: PROTOCOL_VERSION,
          role: 'relay',
          backend: 'relay',
          device: `${hostname()} (relay)`,
          capabilities: { wireDtypes: ['float32', 'float16'] },
        }),
      ),
    );
    const outcome = await link.ended;
    if (this.state !== 'finished') this.state = 'connecting';
    return outcome;
  }

  private async onMessage(data: unknown, isBinary: boolean): Promise<void> {
    const msg: CoordinatorToWorker = parseCoordinatorMessage(data, isBinary);
    switch (msg.type) {
      case 'welcome':
        return this.onWelcome(msg);
      case 'round':
        return this.onRound(msg, data);
      case 'bye':
        this.log.info({ reason: msg.reason }, 'parent said bye');
        this.link?.finish(msg.reason);
        return;
      case 'refuse':
      case 'error':
        throw new GanError(msg.code, `parent: ${msg.type === 'refuse' ? msg.reason : msg.message}`);
      default:
        throw new GanError('BAD_MESSAGE', `unexpected ${msg.type} message`);
    }
  }

  /** Joined (or joined again): the full parameters; the first welcome also opens the children's port. */
  private async onWelcome(msg: Welcome): Promise<void> {
    const { wireDtype, ...descriptor } = msg.run;
    let j = this.joined;
    if (j && j.preset.name !== descriptor.preset)
      throw new GanError('CONFIG_INVALID', `the parent now trains ${descriptor.preset}, this relay served ${j.preset.name}`);
    if (!j) {
      this.log.info(await this.loops, 'update loops');
      const shared = await this.sharedMemory;
      this.log.info(sharedMemoryStatus(shared), 'shared memory');
      const preset = getPreset(descriptor.preset);
      const mirror = new ParamMirror(preset);
      const poolSettings: PoolSettings = { ...this.settings.pool, wireDtype, aggregate: 'mean', minWorkers: 1, roundTimeoutS: 0, minRoundTimeoutS: 0 };
      const source = { preset, store: mirror, round: () => this.round };
      const describe = () => (this.joined as NonNullable<Relay['joined']>).descriptor;
      const pool = new WorkerPool(poolSettings, source, describe, this.events, this.log, 'calls' in shared ? shared.calls : undefined);
      pool.onChange = () => this.reportLeaves();
      j = { preset, mirror, pool, descriptor, relayId: msg.workerId };
    }
    this.joined = { ...j, descriptor, relayId: msg.workerId };
    this.round = msg.round;
    this.log = this.baseLog.child({ relay: msg.workerId });
    const expected = j.preset.params.map((s) => ({ name: s.name, shape: s.shape }));
    j.mirror.update(decodeTensors(msg.params, { expected }), true);
    this.state = 'joined';
    (this.link as UpstreamLink).joined = true;
    this.log.info({ runId: descriptor.runId, preset: descriptor.preset, round: msg.round }, 'relay joined its parent');
    if (!this.edge) {
      this.edge = await startEdge(this.settings.server, this, this.log);
      this.markServing(this.edge);
    }
    this.reportLeaves();
  }

  /** Tells the parent how many slots this relay has, and its tree, when they changed. */
  private reportLeaves(): void {
    const j = this.joined;
    if (!j || !this.link?.open || this.state !== 'joined') return;
    const report: Leaves = { type: 'leaves', count: j.pool.slots, children: j.pool.status().map(treeNode) };
    const json = JSON.stringify(report);
    if (json === this.reported) return;
    this.reported = json;
    this.link.ws.send(encodeMessage(report));
  }

  private async onRound(msg: Round, data: unknown): Promise<void> {
    const j = this.joined;
    if (!j || this.state !== 'joined') throw new GanError('BAD_MESSAGE', 'round before welcome');
    const started = performance.now();
    this.round = msg.round;
    if (msg.update) j.mirror.update(decodeTensors(msg.update));
    const tasks = tasksOf(msg);
    const run: PoolRun = { preset: j.preset, store: j.mirror, round: msg.round, phase: msg.phase, plan: (slots) => tasks.slice(0, slots) };
    if (msg.deadlineMs === undefined) throw new GanError('BAD_MESSAGE', 'a round for a relay carries its deadline');
    const computed = await j.pool.computeRound(run, msg.deadlineMs);
    const combineStarted = performance.now();
    const bytesIn = computed?.timing.bytesIn ?? 0;
    const bytesOut = computed?.timing.bytesOut ?? 0;
    const round = j.descriptor.relaySums === 'float32';
    const reply = computed ? this.sums(msg, j.preset, computed, round) : { fields: emptySums(msg), sets: {} };
    const dtypes: SetDtypes = round ? { sums: 'float32', stats: 'float64' } : 'float64';
    const frame = this.replyFrame({ ...reply.fields, relay: { roundMs: performance.now() - started, bytesIn, bytesOut } }, reply.sets, dtypes);
    const combineMs = performance.now() - combineStarted;
    if (this.link?.open) {
      const out = this.outgoing;
      const reused = frame.buffer === out.bytes?.buffer;
      if (reused) out.sending = true;
      sendFragmented(this.link.ws, [frame], () => reused && (out.sending = false));
    }
    this.lastRound = {
      round: msg.round,
      phase: msg.phase,
      tasks: tasks.length,
      used: reply.fields.used.length,
      samples: reply.fields.samples,
      roundMs: performance.now() - started,
      combineMs,
      bytesIn: bytesIn + frameSize(data),
      bytesOut: bytesOut + frame.byteLength,
    };
    this.metrics.round(this.lastRound);
    this.log.info({ ...this.lastRound, computeMs: computed?.timing.computeMs ?? 0 }, 'relay round');
    this.reportLeaves();
  }

  /**
   * The children's contributions as one reply: exact sums of gradients and batch-norm statistics,
   * as the frame's fields and float64 sets; with `round`, the gradient sums rounded to float32 (the
   * statistics stay exact: they are few, and their pooled variance needs every digit).
   */
  private sums(
    msg: Round,
    preset: ModelPreset,
    computed: ComputedRound,
    round: boolean,
  ): { fields: Omit<Sums, 'sums' | 'stats'>; sets: Record<string, NamedSums[]> } {
    const { contributions, timing } = computed;
    const samples = contributions.reduce((n, c) => n + c.samples, 0);
    const grads = specsOf(preset, msg.phase).map((s) => ({ name: s.name, shape: s.shape, terms: contributions.map((c) => c.grads.get(s.name) as SumTerm) }));
    const stats = msg.phase === 'G' ? batchNormStatSpecs(preset).map((s) => ({ ...s, terms: contributions.map((c) => c.stats?.get(s.name) as SumTerm) })) : [];
    const [sums, rest] = this.add(grads);
    const [statSums, statsRest] = this.add(stats);
    const fields: Omit<Sums, 'sums' | 'stats'> = {
      type: 'sums',
      round: msg.round,
      phase: msg.phase,
      samples,
      loss: contributions.reduce((s, c) => s + c.samples * c.loss, 0) / samples,
      used: timing.used ?? [],
      ...(rest.length && !round ? { rest } : {}),
      ...(statsRest.length ? { statsRest } : {}),
      computeMs: timing.computeMs,
    };
    const sent = round ? sums.map((t) => ({ ...t, values: this.toFloat32(t.name, t.values) })) : sums;
    return { fields, sets: statSums.length ? { sums: sent, stats: statSums } : { sums: sent } };
  }

  /** `values` rounded to float32 (to nearest, from their float64 sums) in the tensor's reused array. */
  private toFloat32(name: string, values: Float64Array | Float32Array): Float32Array {
    let out = this.rounded.get(name);
    if (!out) this.rounded.set(name, (out = new Float32Array(values.length)));
    out.set(values);
    return out;
  }

  /** The reply as one tensor frame (the layout encodeMessage gives it), written into the reusable buffer when the socket is done with it. */
  private replyFrame(fields: Omit<Sums, 'sums' | 'stats'>, sets: Record<string, NamedSums[]>, dtypes: SetDtypes): Uint8Array {
    const out = this.outgoing;
    const frame = encodeFrame(fields, sets, dtypes, out.sending ? undefined : out.bytes);
    if (!out.sending && frame.buffer !== out.bytes?.buffer) out.bytes = frame;
    return frame;
  }

  /** Each tensor's terms summed exactly: the float64 sums and the rest entries. */
  private add(tensors: readonly { name: string; shape: number[]; terms: SumTerm[] }[]): [NamedSums[], RestEntry[]] {
    const rest: RestEntry[] = [];
    const sums = tensors.map(({ name, shape, terms }, t) => {
      if (terms.some((x) => x === undefined)) throw new GanError('INTERNAL', `a contribution lacks ${name}`);
      let values = this.scratch.get(name);
      if (!values) this.scratch.set(name, (values = new Float64Array(sizeOf(shape))));
      for (const [i, components] of sumTerms(terms, values)) rest.push([t, i, ...components]);
      return { name, shape, values };
    });
    return [sums, rest];
  }
}

/** A member as the relay reports it to its parent (what changes every round stays out: the report goes only on change). */
function treeNode(w: WorkerStatus): TreeNode {
  return { id: w.id, role: w.role, backend: w.backend, slots: w.slots, ...(w.children ? { children: w.children } : {}) };
}

/** The round's tasks, one per seed, as the parent planned them. */
function tasksOf(msg: Round): SlotTask[] {
  const seeds = decodeIndices(msg.seeds);
  const indices = msg.indices ? decodeIndices(msg.indices) : undefined;
  return [...seeds].map((seed, k) => ({
    round: msg.round,
    phase: msg.phase,
    batchSize: msg.batchSize,
    seed,
    ...(indices ? { indices: indices.subarray(k * msg.batchSize, (k + 1) * msg.batchSize) } : {}),
  }));
}

/** No child answered: the parent goes on without this relay's slots this round. */
function emptySums(msg: Round): Sums {
  return { type: 'sums', round: msg.round, phase: msg.phase, samples: 0, loss: 0, used: [], computeMs: 0 };
}
