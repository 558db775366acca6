import { hostname } from 'node:os';
import { backOff } from 'exponential-backoff';
import WebSocket from 'ws';
import {
  type CoordinatorToWorker,
  GanError,
  type GanErrorCode,
  PROTOCOL_VERSION,
  type Round,
  type WireDtype,
  closeCodeFor,
  encodeMessage,
  isGanError,
  parseCoordinatorMessage,
} from '@ganfleet/shared/wire';
import type { Logger } from '@ganfleet/shared/log';
import type { BackendChoice } from '@ganfleet/shared/backends';
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
  /** Threads of the native backend's kernels (--threads); default 1. Results do not depend on it. */
  threads?: number;
  /**
   * Mask frames with random keys, as RFC 6455 asks of clients, for proxies that inspect
   * WebSocket traffic (--random-mask). Off, the key is zero: ws then sends a frame's bytes as
   * they are instead of copying them to mask them, and the coordinator skips unmasking.
   */
  randomMask?: boolean;
  log: Logger;
}

export interface WorkerHandle {
  /** Resolves when the coordinator says training is over; rejects on a fatal refusal or after --give-up-after. */
  done: Promise<{ rounds: number; reason: string }>;
  close(): Promise<void>;
}

/** Refusals that retrying cannot fix. */
const FATAL: readonly GanErrorCode[] = ['UNAUTHORIZED', 'VERSION_MISMATCH', 'DATASET_MISMATCH', 'CONFIG_INVALID'];
const BACKOFF = { jitter: 'full', startingDelay: 250, timeMultiple: 2, maxDelay: 5000, numOfAttempts: Number.MAX_SAFE_INTEGER } as const;

/** A connection that dropped before the coordinator welcomed this worker: retried with backoff. */
class ConnectionLost extends Error {}

/** The upgrade request's headers: the token travels here, so the coordinator checks it before any frame. */
export function upgradeHeaders(token: string | undefined): { headers?: Record<string, string> } {
  return token ? { headers: { authorization: `Bearer ${token}` } } : {};
}

/** The error for an upgrade the coordinator answered with `status` instead of 101. 401 and 429 are only ever a wrong or missing token. */
export function upgradeRefusal(status: number | undefined, sentToken: boolean): GanError {
  if (status === 401 || status === 429) {
    const throttled = status === 429 ? ', and it is throttling failed attempts' : '';
    const what = sentToken ? `coordinator: invalid token (HTTP ${status}${throttled})` : `coordinator: a token is required (HTTP ${status}${throttled})`;
    return new GanError('UNAUTHORIZED', `${what}: check --token or GANFLEET_TOKEN`);
  }
  return new GanError('WORKER_LOST', `coordinator refused the connection: HTTP ${status ?? '?'}`);
}

/**
 * Connects to a coordinator, joins the run and answers rounds until told to stop. Gradients
 * are computed on a separate thread; the connection comes back by itself (with backoff) when
 * the coordinator restarts or the network drops.
 */
export async function startWorker(config: WorkerConfig): Promise<WorkerHandle> {
  const log = config.log.child({ component: 'worker' });
  const thread = new ComputeThread();
  const { backend, dataset } = await thread.init(config.backend, config.dataDir, config.threads);
  log.info({ backend: backend.name, reason: backend.reason, skipped: backend.skipped, dataset: dataset.name }, `backend ${backend.name}`);
  let stopped = false;
  let current: WebSocket | undefined;
  let rounds = 0;

  const giveUpMs = (config.giveUpAfterS ?? 300) * 1000;
  /** When the coordinator was last lost (or first sought): --give-up-after counts from here. */
  let unreachableSince = Date.now();
  let joined = false;

  /** One connection to its end; a drop before the welcome throws, for backOff to retry. */
  const connect = async (): Promise<Outcome> => {
    if (stopped) return { kind: 'finished', reason: 'stopped' };
    joined = false;
    const ws = new WebSocket(config.url, {
      maxPayload: 0,
      handshakeTimeout: 10_000,
      ...(config.randomMask ? {} : { generateMask: zeroMask }),
      ...upgradeHeaders(config.token),
      ...(config.ca ? { ca: config.ca } : {}),
    });
    current = ws;
    const session = new WorkerSession(ws, thread, dataset.fingerprint, Boolean(config.token), log, () => {
      joined = true;
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
        }),
      );
    });
    const outcome = await session.ended;
    rounds += session.rounds;
    if (outcome.kind === 'lost' && !joined && !stopped) throw new ConnectionLost(outcome.reason);
    return outcome;
  };

  const run = async (): Promise<{ rounds: number; reason: string }> => {
    // Full jitter, so that workers cut off together by a coordinator restart do not come back in
    // lockstep; the delays start over once a connection has been welcomed.
    for (let after = false; ; after = true) {
      const outcome = await backOff(connect, {
        ...BACKOFF,
        delayFirstAttempt: after,
        retry: (err: unknown, attempt: number) => {
          if (!(err instanceof ConnectionLost) || stopped || Date.now() - unreachableSince > giveUpMs) return false;
          log.warn({ attempt, reason: err.message }, 'connection lost; reconnecting');
          return true;
        },
      }).catch((err: unknown) => {
        if (!(err instanceof ConnectionLost)) throw err;
        if (stopped) return { kind: 'finished', reason: 'stopped' } as const;
        const s = Math.round((Date.now() - unreachableSince) / 1000);
        throw new GanError('WORKER_LOST', `coordinator at ${config.url} unreachable for ${s} s (--give-up-after ${giveUpMs / 1000}): ${err.message}`);
      });
      if (outcome.kind === 'finished' || stopped) return { rounds, reason: outcome.reason };
      if (outcome.kind === 'fatal') throw outcome.error;
      unreachableSince = Date.now();
      log.warn({ reason: outcome.reason }, 'connection lost; reconnecting');
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
  /** Set by the welcome: rounds before it are refused. */
  private joined = false;
  /** The buffer the last gradients went out in, once sent: the compute thread writes the next ones into it. */
  private spare: ArrayBuffer | undefined;
  private fatal: GanError | undefined;
  private finished = false;
  /** Frames are handled strictly in order; a round's compute is asynchronous. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly ws: WebSocket,
    private readonly thread: ComputeThread,
    private readonly fingerprint: string,
    sentToken: boolean,
    private log: Logger,
    private readonly onJoined: () => void,
  ) {
    this.ended = new Promise((resolve) => {
      let refusedWith: string | undefined;
      // Not upgraded (401/429: the token; 503: the connection limit): no socket, so no refuse message to read.
      ws.on('unexpected-response', (_req, res) => {
        const e = upgradeRefusal(res.statusCode, sentToken);
        if (FATAL.includes(e.code)) {
          this.log.error({ code: e.code }, e.message);
          this.fatal = e;
        }
        refusedWith = e.message;
        ws.terminate();
      });
      ws.on('message', (data, isBinary) => {
        this.queue = this.queue.then(() => this.onMessage(data, isBinary)).catch((err: unknown) => this.fail(err));
      });
      ws.on('close', (code, reason) => {
        const text = refusedWith ?? (reason.toString() || `close code ${code}`);
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
        // The compute thread builds the run's model (an unknown preset fails there, with its code).
        await this.thread.start(run.preset, ownedBuffer(data));
        this.joined = true;
        this.log.info({ runId: run.runId, preset: run.preset, round: msg.round }, 'joined run');
        this.onJoined();
        return;
      }
      case 'round':
        return this.onRound(msg, data);
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

  /** The round's frame goes to the compute thread as it came; the gradients frame it returns goes out as it is. */
  private async onRound(msg: Round, data: unknown): Promise<void> {
    if (!this.joined) throw new GanError('BAD_MESSAGE', 'round before welcome');
    const spare = this.spare;
    this.spare = undefined;
    const r = await this.thread.round(ownedBuffer(data), spare);
    if (this.ws.readyState !== WebSocket.OPEN) return;
    // Back to the compute thread for the next reply once the socket is done with it.
    this.ws.send(new Uint8Array(r.frame, 0, r.byteLength), (err) => {
      if (!err) this.spare = r.frame;
    });
    this.rounds += 1;
    this.log.debug({ round: msg.round, phase: msg.phase, loss: r.loss, computeMs: r.computeMs }, 'round done');
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

/**
 * A received frame's memory, to hand to the compute thread: ws gives large messages a buffer of
 * their own, which moves as it is; a frame that shares its memory is copied first.
 */
function ownedBuffer(data: unknown): ArrayBuffer {
  const bytes = data as Uint8Array;
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) return bytes.buffer;
  // Not bytes.slice(): on a Node Buffer that is a view of the same memory.
  return new Uint8Array(bytes).buffer;
}

/** A zero masking key: masking with it changes nothing, so ws skips the copy. */
function zeroMask(mask: Buffer): void {
  mask.fill(0);
}
