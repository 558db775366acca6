import { randomBytes } from 'node:crypto';
import { type Server, createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { GanError, closeCodeFor, encodeMessage, isGanError, parseWorkerMessage } from '@ganfleet/shared/wire';
import { loadDataset, meanImage } from '@ganfleet/shared/data';
import type { Logger } from '@ganfleet/shared/log';
import { type ModelPreset, countParams, getPreset } from '@ganfleet/shared/model';
import { AuthGate, isLoopback } from './authGate.js';
import { type Checkpoint, checkpointDir, loadLatestCheckpoint } from './checkpoint.js';
import { Coordinator, type CoordinatorStatus } from './coordinator.js';
import type { RunEvents } from './events.js';
import type { RunSettings, ServerSettings } from './settings.js';
import { createHttpHandler } from './httpApi.js';
import type { TrainingRun } from './trainingRun.js';

export interface CoordinatorOptions {
  settings: RunSettings;
  server: ServerSettings;
  /** Continue the run under this directory from its newest good checkpoint: its training settings win, and it becomes `out`. */
  resumeFrom?: string;
  log: Logger;
}

export interface CoordinatorHandle {
  url: string;
  port: number;
  /** The token in force (undefined on loopback without one); `tokenGenerated` if we made it up. */
  token: string | undefined;
  tokenGenerated: boolean;
  /** Largest frame accepted from a peer (bytes), derived from the model size. */
  maxPayload: number;
  run: TrainingRun;
  events: RunEvents;
  status(): CoordinatorStatus;
  /** Resolves when training has finished and outputs are written (or the coordinator was closed). */
  done: Promise<TrainingRun>;
  /** Writes a checkpoint now (between rounds); resolves to its path, or undefined without --out. */
  checkpoint(): Promise<string | undefined>;
  close(): Promise<void>;
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
  const tokenGenerated = server.token === undefined && !isLoopback(server.host);
  const auth = new AuthGate(tokenGenerated ? AuthGate.generateToken() : server.token, server.maxAuthFailuresPerMinute);
  const preset = getPreset(settings.preset);
  const dataset = await loadDataset({ split: 'train', ...(settings.dataDir ? { dir: settings.dataDir } : {}) });
  const data = { count: dataset.count, meanImage: meanImage(dataset) };
  const coordinator = new Coordinator(settings, preset, dataset, data, resumed, randomBytes(6).toString('hex'), opts.log);
  const httpServer = new CoordinatorServer(server, coordinator, auth, opts.log);
  const port = await httpServer.listen();
  if (server.exitWhenDone)
    void coordinator.done.then(
      () => httpServer.close(),
      () => httpServer.close(),
    );
  const host = server.host.includes(':') ? `[${server.host}]` : server.host;
  return {
    url: `${server.tls ? 'wss' : 'ws'}://${host}:${port}`,
    port,
    token: auth.token,
    tokenGenerated,
    maxPayload: maxPayloadFor(preset),
    run: coordinator.run,
    events: coordinator.events,
    status: () => coordinator.status(),
    done: coordinator.done,
    checkpoint: () => coordinator.checkpoint(),
    close: () => httpServer.close(),
  };
}

/** The network edge: HTTP(S) server, upgrade limits, the first frame (hello or fetch) and authentication. */
class CoordinatorServer {
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly log;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly config: ServerSettings,
    private readonly coordinator: Coordinator,
    private readonly auth: AuthGate,
    log: Logger,
  ) {
    this.log = log.child({ component: 'server' });
    const handler = createHttpHandler(coordinator, auth, this.log.child({ component: 'http' }));
    // Slow or stalled handshakes (slowloris) are cut by the header and request timeouts.
    const timeouts = { headersTimeout: config.handshakeTimeoutS * 1000, requestTimeout: config.handshakeTimeoutS * 1000, connectionsCheckingInterval: 500 };
    this.http = config.tls ? createHttpsServer({ ...config.tls, ...timeouts }, handler) : createServer(timeouts, handler);
    this.wss = new WebSocketServer({ noServer: true, maxPayload: maxPayloadFor(coordinator.run.preset) });
    this.http.on('upgrade', (req, socket: Socket, head) => {
      const remote = req.socket.remoteAddress ?? 'unknown';
      if (this.auth.blocked(remote)) return refuseUpgrade(socket, 429, 'Too Many Requests');
      if (this.wss.clients.size >= config.maxConnections) {
        this.log.warn({ code: 'TOO_LARGE', remote, connections: this.wss.clients.size }, 'connection limit reached');
        return refuseUpgrade(socket, 503, 'Service Unavailable');
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, remote));
    });
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.config.port, this.config.host, () => {
        const port = (this.http.address() as AddressInfo).port;
        const { run } = this.coordinator;
        const { preset } = run;
        this.log.info(
          {
            host: this.config.host,
            port,
            tls: Boolean(this.config.tls),
            auth: this.auth.token !== undefined,
            preset: preset.name,
            minWorkers: this.coordinator.loop.settings.minWorkers,
            rounds: run.schedule.totalRounds,
          },
          'coordinator listening',
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
    this.coordinator.stop();
    for (const ws of this.wss.clients) ws.close(1001, 'coordinator shutting down');
    // Give peers a moment to complete the closing handshake, then cut whoever is left.
    await new Promise((resolve) => setTimeout(resolve, this.wss.clients.size ? 500 : 0));
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  /** Handshake: the first frame must be hello (join) or fetchGenerator (download), with the token. */
  private onConnection(ws: WebSocket, remote: string): void {
    const timer = setTimeout(() => ws.close(closeCodeFor('TIMEOUT'), 'TIMEOUT: no hello'), this.config.handshakeTimeoutS * 1000);
    ws.once('message', (data, isBinary) => {
      clearTimeout(timer);
      void this.onFirstMessage(ws, remote, data, isBinary).catch((err: unknown) => {
        const e = isGanError(err) ? err : new GanError('INTERNAL', String(err));
        this.log.warn({ code: e.code, remote }, `connection refused: ${e.message}`);
        if (ws.readyState === ws.OPEN) {
          ws.send(encodeMessage({ type: 'refuse', code: e.code, reason: e.message }));
          ws.close(closeCodeFor(e.code), `${e.code}: ${e.message}`.slice(0, 120));
        }
      });
    });
    ws.on('close', () => clearTimeout(timer));
    ws.on('error', (err) => this.log.debug({ remote, err: err.message }, 'socket error before join'));
  }

  private async onFirstMessage(ws: WebSocket, remote: string, data: unknown, isBinary: boolean): Promise<void> {
    const msg = parseWorkerMessage(data, isBinary);
    if (msg.type !== 'hello' && msg.type !== 'fetchGenerator') throw new GanError('BAD_MESSAGE', `expected hello, got ${msg.type}`);
    if (!this.auth.accepts(msg.token)) {
      this.auth.recordFailure(remote);
      this.coordinator.events.emit('authFailed', { remote });
      // Says nothing about the run: no id, preset or step before authentication.
      throw new GanError('UNAUTHORIZED', msg.token === undefined ? 'a token is required' : 'invalid token');
    }
    if (msg.type === 'fetchGenerator') {
      const art = await this.coordinator.generator();
      ws.send(encodeMessage({ type: 'generator', step: this.coordinator.run.iteration, modelJson: art.modelJson, weights: art.weights }));
      ws.close(1000, 'done');
      return;
    }
    this.coordinator.admit(ws, msg);
  }
}

function refuseUpgrade(socket: Socket, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** Largest legitimate worker frame: one phase's gradients (or one set of stats) plus headroom for the envelope. */
export function maxPayloadFor(preset: ModelPreset): number {
  const largest = Math.max(countParams(preset, 'G'), countParams(preset, 'D'));
  return largest * 4 + 1024 * 1024;
}
