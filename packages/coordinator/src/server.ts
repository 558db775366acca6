import { randomBytes } from 'node:crypto';
import { type IncomingMessage, STATUS_CODES, type Server, type ServerResponse, createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { type RawData, WebSocketServer, type WebSocket } from 'ws';
import { GanError, type GeneratorMessage, type Hello, closeCodeFor, encodeMessage, isGanError, parseWorkerMessage } from '@ganfleet/shared/wire';
import { loadSharedMemory, sharedMemoryStatus, useFastestUpdateLoops } from '@ganfleet/shared/backends';
import { loadDataset, meanImage } from '@ganfleet/shared/data';
import type { Logger } from '@ganfleet/shared/log';
import { type ModelPreset, countParams, getPreset } from '@ganfleet/shared/model';
import { AuthGate, isLoopback } from './authGate.js';
import { type Checkpoint, checkpointDir, loadLatestCheckpoint } from './checkpoint.js';
import { Coordinator, type CoordinatorStatus } from './coordinator.js';
import type { RunEvents } from './events.js';
import type { RunSettings, ServerSettings } from './settings.js';
import { createHttpHandler } from './httpApi.js';
import { type Refusal, RequestGate } from './requestGate.js';
import type { TrainingRun } from './trainingRun.js';

export interface CoordinatorOptions {
  settings: RunSettings;
  server: ServerSettings;
  /** Continue the run under this directory from its newest good checkpoint: its training settings win, and it becomes `out`. */
  resumeFrom?: string;
  log: Logger;
}

export interface CoordinatorHandle extends Edge {
  /** Largest frame accepted from a peer (bytes), derived from the model size. */
  maxPayload: number;
  run: TrainingRun;
  events: RunEvents;
  status(): CoordinatorStatus;
  /** Resolves when training has finished and outputs are written (or the coordinator was closed). */
  done: Promise<TrainingRun>;
  /** Writes a checkpoint now (between rounds); resolves to its path, or undefined without --out. */
  checkpoint(): Promise<string | undefined>;
}

/** Starts the coordinator: binds, admits workers, runs the rounds, saves outputs. */
export async function startCoordinator(opts: CoordinatorOptions): Promise<CoordinatorHandle> {
  const log = opts.log.child({ component: 'coordinator' });
  const { server } = opts;
  let settings = opts.settings;
  let resumed: Checkpoint | undefined;
  if (opts.resumeFrom) {
    resumed = await loadLatestCheckpoint(opts.resumeFrom, log);
    if (!resumed) throw new GanError('CHECKPOINT_CORRUPT', `no usable checkpoint under ${checkpointDir(opts.resumeFrom)}`);
    settings = { ...settings, ...resumed.training, out: opts.resumeFrom };
    log.info({ checkpoint: resumed.path, round: resumed.snapshot.round }, 'resuming from checkpoint');
  }
  const preset = getPreset(settings.preset);
  log.info(await useFastestUpdateLoops(), 'update loops');
  const shared = await loadSharedMemory();
  log.info(sharedMemoryStatus(shared), 'shared memory');
  const dataset = await loadDataset({ split: 'train', ...(settings.dataDir ? { dir: settings.dataDir } : {}) });
  const data = { count: dataset.count, meanImage: meanImage(dataset) };
  const runId = randomBytes(6).toString('hex');
  const coordinator = new Coordinator(settings, preset, dataset, data, resumed, runId, opts.log, 'calls' in shared ? shared.calls : undefined);
  const edge = await startEdge(server, coordinatorNode(coordinator), opts.log);
  if (server.exitWhenDone)
    void coordinator.done.then(
      () => edge.close(),
      () => edge.close(),
    );
  return {
    ...edge,
    maxPayload: maxPayloadFor(preset),
    run: coordinator.run,
    events: coordinator.events,
    status: () => coordinator.status(),
    done: coordinator.done,
    checkpoint: () => coordinator.checkpoint(),
  };
}

/** What a server (the coordinator, or a relay) offers on its port, behind the same edge. */
export interface ServedNode {
  readonly kind: 'coordinator' | 'relay';
  readonly preset: ModelPreset;
  readonly events: RunEvents;
  /** A hello that passed the edge (from `remote`, the peer's address): join it, or throw a coded refusal. */
  admit(ws: WebSocket, hello: Hello, remote: string): void;
  /** The answer to fetchGenerator, or a coded refusal. */
  generator(): Promise<GeneratorMessage>;
  /** The server is closing: stop waiting for members. */
  stop(): void;
  /** HTTP on the same port, admitted by the same gate. */
  httpHandler(gate: RequestGate, log: Logger): (req: IncomingMessage, res: ServerResponse) => void;
  /** What the "listening" log line says about it. */
  describe(): Record<string, unknown>;
}

/** A started edge: its address, the token in force, and how to close it. */
export interface Edge {
  url: string;
  port: number;
  /** The token in force (undefined on loopback without one); `tokenGenerated` if we made it up. */
  token: string | undefined;
  tokenGenerated: boolean;
  close(): Promise<void>;
}

/** Binds `node` behind the network edge: token (generated off loopback when none is given), limits, TLS. */
export async function startEdge(server: ServerSettings, node: ServedNode, log: Logger): Promise<Edge> {
  const tokenGenerated = server.token === undefined && !isLoopback(server.host);
  const auth = new AuthGate(tokenGenerated ? AuthGate.generateToken() : server.token, {
    perAddress: server.maxAuthFailuresPerMinute,
    total: server.maxAuthFailuresPerMinuteTotal,
  });
  const httpServer = new EdgeServer(server, node, auth, log);
  const port = await httpServer.listen();
  const host = server.host.includes(':') ? `[${server.host}]` : server.host;
  return { url: `${server.tls ? 'wss' : 'ws'}://${host}:${port}`, port, token: auth.token, tokenGenerated, close: () => httpServer.close() };
}

/** The coordinator as the edge serves it. */
function coordinatorNode(coordinator: Coordinator): ServedNode {
  const { run } = coordinator;
  return {
    kind: 'coordinator',
    preset: run.preset,
    events: coordinator.events,
    admit: (ws, hello, remote) => coordinator.admit(ws, hello, remote),
    generator: async () => {
      const art = await coordinator.generator();
      return { type: 'generator', step: run.iteration, modelJson: art.modelJson, weights: art.weights };
    },
    stop: () => coordinator.stop(),
    httpHandler: (gate, log) => createHttpHandler(coordinator, gate, log),
    describe: () => ({ preset: run.preset.name, minWorkers: coordinator.loop.settings.minWorkers, rounds: run.schedule.totalRounds }),
  };
}

/** Bytes a connection may send before its hello (or fetchGenerator) has arrived: a hello is a few hundred. */
export const PRE_JOIN_MAX_BYTES = 64 * 1024;

/** How long a connection refused before its hello has to read the refusal before it is cut. */
const REFUSAL_GRACE_MS = 1000;

/**
 * The network edge: HTTP(S) server and the upgrade. Everything a peer can make the coordinator
 * do before it is authenticated happens in RequestGate, on the request line and headers: no
 * WebSocket, no slot, no frame for a peer without the token. After the upgrade, the first frame
 * (hello or fetch) is held to PRE_JOIN_MAX_BYTES; the model-sized maxPayload applies once joined.
 */
class EdgeServer {
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly gate: RequestGate;
  private readonly log;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly config: ServerSettings,
    private readonly node: ServedNode,
    private readonly auth: AuthGate,
    log: Logger,
  ) {
    this.log = log.child({ component: 'server' });
    this.gate = new RequestGate(auth, node.events, this.log);
    const handler = node.httpHandler(this.gate, this.log.child({ component: 'http' }));
    // Slow or stalled handshakes (slowloris) are cut by the header and request timeouts.
    const timeouts = { headersTimeout: config.handshakeTimeoutS * 1000, requestTimeout: config.handshakeTimeoutS * 1000, connectionsCheckingInterval: 500 };
    this.http = config.tls ? createHttpsServer({ ...config.tls, ...timeouts }, handler) : createServer(timeouts, handler);
    this.wss = new WebSocketServer({ noServer: true, maxPayload: maxPayloadFor(node.preset) });
    this.http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(req, socket, head));
  }

  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const admission = this.gate.admit(req);
    if (!admission.ok) return refuseUpgrade(socket, admission.refusal);
    const remote = req.socket.remoteAddress ?? 'unknown';
    // Browsers send Origin (version 8: Sec-WebSocket-Origin); workers and fetch send none. Without this a web page
    // could open a socket to a token-less loopback coordinator. No same-origin exception: the dashboard polls over HTTP.
    const origin = req.headers.origin ?? req.headers['sec-websocket-origin'];
    if (origin !== undefined && !this.config.allowedOrigins.includes(String(origin))) {
      this.log.warn({ code: 'UNAUTHORIZED', remote, origin: String(origin).slice(0, 200) }, 'connection refused: browser origin not allowed (--allow-origin)');
      return refuseUpgrade(socket, { status: 403, message: 'origin not allowed' });
    }
    if (this.wss.clients.size >= this.config.maxConnections) {
      this.log.warn({ code: 'TOO_MANY_CONNECTIONS', remote, connections: this.wss.clients.size }, 'connection limit reached');
      return refuseUpgrade(socket, { status: 503, message: 'too many connections' });
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, socket, remote));
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.config.port, this.config.host, () => {
        const port = (this.http.address() as AddressInfo).port;
        this.log.info(
          { host: this.config.host, port, tls: Boolean(this.config.tls), auth: this.auth.token !== undefined, ...this.node.describe() },
          `${this.node.kind} listening`,
        );
        resolve(port);
      });
    });
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.node.stop();
    for (const ws of this.wss.clients) ws.close(1001, `${this.node.kind} shutting down`);
    // Give peers a moment to complete the closing handshake, then cut whoever is left.
    await new Promise((resolve) => setTimeout(resolve, this.wss.clients.size ? 500 : 0));
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  /** Handshake: the first frame, at most PRE_JOIN_MAX_BYTES, must be hello (join) or fetchGenerator (download). */
  private onConnection(ws: WebSocket, socket: Socket, remote: string): void {
    const timer = setTimeout(() => ws.close(closeCodeFor('TIMEOUT'), 'TIMEOUT: no hello'), this.config.handshakeTimeoutS * 1000);
    const onFirst = (data: RawData, isBinary: boolean): void => {
      clearTimeout(timer);
      stopCounting();
      void this.onFirstMessage(ws, data, isBinary, remote).catch((err: unknown) => this.refuse(ws, remote, err));
    };
    // Counted on the socket ahead of ws, so an oversized first frame is cut once 64 KiB have arrived: never buffered up
    // to maxPayload, never parsed.
    const stopCounting = onBytesOver(socket, PRE_JOIN_MAX_BYTES, () => {
      clearTimeout(timer);
      ws.off('message', onFirst);
      ws.pause();
      this.refuse(ws, remote, new GanError('TOO_LARGE', `more than ${PRE_JOIN_MAX_BYTES} bytes before hello`));
      // Paused, the peer's closing handshake is never read: cut it once the refusal had time to go out.
      setTimeout(() => ws.terminate(), REFUSAL_GRACE_MS);
    });
    ws.once('message', onFirst);
    ws.on('close', () => {
      clearTimeout(timer);
      stopCounting();
    });
    ws.on('error', (err) => this.log.debug({ remote, err: err.message }, 'socket error before join'));
  }

  private refuse(ws: WebSocket, remote: string, err: unknown): void {
    const e = isGanError(err) ? err : new GanError('INTERNAL', String(err));
    this.log.warn({ code: e.code, remote }, `connection refused: ${e.message}`);
    if (ws.readyState === ws.OPEN) {
      ws.send(encodeMessage({ type: 'refuse', code: e.code, reason: e.message }));
      ws.close(closeCodeFor(e.code), `${e.code}: ${e.message}`.slice(0, 120));
    }
  }

  private async onFirstMessage(ws: WebSocket, data: unknown, isBinary: boolean, remote: string): Promise<void> {
    const msg = parseWorkerMessage(data, isBinary);
    if (msg.type !== 'hello' && msg.type !== 'fetchGenerator') throw new GanError('BAD_MESSAGE', `expected hello, got ${msg.type}`);
    if (msg.type === 'fetchGenerator') {
      ws.send(encodeMessage(await this.node.generator()));
      ws.close(1000, 'done');
      return;
    }
    this.node.admit(ws, msg, remote);
  }
}

/** Calls `exceeded` once when more than `limit` bytes have arrived on `socket`, unless stopped first. */
function onBytesOver(socket: Socket, limit: number, exceeded: () => void): () => void {
  let received = 0;
  const count = (chunk: Buffer): void => {
    received += chunk.length;
    if (received <= limit) return;
    stop();
    exceeded();
  };
  const stop = (): void => void socket.off('data', count);
  socket.prependListener('data', count);
  return stop;
}

/** Answers an upgrade with an HTTP error and closes once it is written (as ws does for a failed handshake). */
function refuseUpgrade(socket: Socket, refusal: Refusal): void {
  const body = `${refusal.message}\n`;
  const headers = { connection: 'close', 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), ...refusal.headers };
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`);
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? ''}\r\n${lines.join('')}\r\n${body}`);
}

/**
 * Largest legitimate frame from a member: one phase's gradients as a relay's float64 sums, plus
 * headroom for the envelope, the batch-norm sums and the sums' rest (a few entries in practice).
 */
export function maxPayloadFor(preset: ModelPreset): number {
  const largest = Math.max(countParams(preset, 'G'), countParams(preset, 'D'));
  return largest * 8 + 4 * 1024 * 1024;
}
