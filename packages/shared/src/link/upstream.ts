/*
 * A connection to the node above: a worker's to its coordinator or relay, a relay's to its parent.
 * Dialled with the token in the upgrade request, and dialled again (exponential backoff with full
 * jitter) when it drops, until it has been unreachable for --give-up-after.
 */
import { backOff } from 'exponential-backoff';
import WebSocket from 'ws';
import { GanError, type GanErrorCode, closeCodeFor, encodeMessage, isGanError } from '../wire/index.js';
import type { Logger } from '../log/index.js';
import { FrameJoiner } from './frameJoiner.js';

/** Refusals that retrying cannot fix. */
export const FATAL: readonly GanErrorCode[] = ['UNAUTHORIZED', 'VERSION_MISMATCH', 'DATASET_MISMATCH', 'CONFIG_INVALID'];

const BACKOFF = { jitter: 'full', startingDelay: 250, timeMultiple: 2, maxDelay: 5000, numOfAttempts: Number.MAX_SAFE_INTEGER } as const;

/** How one connection ended; `joined`: it was welcomed first (the backoff then starts over). */
export type Outcome =
  { kind: 'finished'; reason: string } | { kind: 'lost'; reason: string; joined: boolean } | { kind: 'fatal'; reason: string; error: GanError };

export interface UpstreamOptions {
  /** ws:// or wss:// address of the parent. */
  url: string;
  /** Shared secret (--token or GANFLEET_TOKEN). */
  token?: string;
  /** Extra CA certificate(s), PEM, for a parent with a self-signed certificate. */
  ca?: string | Buffer;
  /** Mask frames with random keys (RFC 6455), for proxies that inspect WebSocket traffic; else a zero key, which spares ws a copy. */
  randomMask?: boolean;
}

/** The upgrade request's headers: the token travels here, so the parent checks it before any frame. */
export function upgradeHeaders(token: string | undefined): { headers?: Record<string, string> } {
  return token ? { headers: { authorization: `Bearer ${token}` } } : {};
}

/** The error for an upgrade the parent answered with `status` instead of 101. 401 and 429 are only ever a wrong or missing token. */
export function upgradeRefusal(status: number | undefined, sentToken: boolean): GanError {
  if (status === 401 || status === 429) {
    const throttled = status === 429 ? ', and it is throttling failed attempts' : '';
    const what = sentToken ? `coordinator: invalid token (HTTP ${status}${throttled})` : `coordinator: a token is required (HTTP ${status}${throttled})`;
    return new GanError('UNAUTHORIZED', `${what}: check --token or GANFLEET_TOKEN`);
  }
  return new GanError('WORKER_LOST', `coordinator refused the connection: HTTP ${status ?? '?'}`);
}

/** Opens one connection to the parent (not yet open: attach handlers, then wait for 'open'). */
export function dial(opts: UpstreamOptions): WebSocket {
  return new WebSocket(opts.url, {
    maxPayload: 0,
    handshakeTimeout: 10_000,
    ...(opts.randomMask ? {} : { generateMask: zeroMask }),
    ...upgradeHeaders(opts.token),
    ...(opts.ca ? { ca: opts.ca } : {}),
  });
}

/** A zero masking key: masking with it changes nothing, so ws skips the copy. */
function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

/** A connection that dropped before the parent welcomed us: retried with backoff. */
class ConnectionLost extends Error {}

/**
 * Runs `connect` (one connection, to its end) again and again: after a drop before the welcome
 * with backoff, after a drop once joined at once (then with backoff), until it finishes, is
 * refused for good (rejects with that error), `stopped()` says so, or the parent has been
 * unreachable for `giveUpAfterS` (rejects with WORKER_LOST).
 */
export async function keepConnected(
  connect: () => Promise<Outcome>,
  opts: { url: string; giveUpAfterS: number; log: Logger; stopped: () => boolean },
): Promise<string> {
  const giveUpMs = opts.giveUpAfterS * 1000;
  /** When the parent was last lost (or first sought): --give-up-after counts from here. */
  let unreachableSince = Date.now();
  const attempt = async (): Promise<Outcome> => {
    if (opts.stopped()) return { kind: 'finished', reason: 'stopped' };
    const outcome = await connect();
    if (outcome.kind === 'lost' && !outcome.joined && !opts.stopped()) throw new ConnectionLost(outcome.reason);
    return outcome;
  };
  // Full jitter, so that peers cut off together by a restart do not come back in lockstep.
  for (let after = false; ; after = true) {
    const outcome = await backOff(attempt, {
      ...BACKOFF,
      delayFirstAttempt: after,
      retry: (err: unknown, n: number) => {
        if (!(err instanceof ConnectionLost) || opts.stopped() || Date.now() - unreachableSince > giveUpMs) return false;
        opts.log.warn({ attempt: n, reason: err.message }, 'connection lost; reconnecting');
        return true;
      },
    }).catch((err: unknown) => {
      if (!(err instanceof ConnectionLost)) throw err;
      if (opts.stopped()) return { kind: 'finished', reason: 'stopped' } as const;
      const s = Math.round((Date.now() - unreachableSince) / 1000);
      throw new GanError('WORKER_LOST', `${opts.url} unreachable for ${s} s (--give-up-after ${opts.giveUpAfterS}): ${err.message}`);
    });
    if (outcome.kind === 'finished' || opts.stopped()) return outcome.reason;
    if (outcome.kind === 'fatal') throw outcome.error;
    unreachableSince = Date.now();
    opts.log.warn({ reason: outcome.reason }, 'connection lost; reconnecting');
  }
}

/**
 * One connection to the parent, as far as it is the same for every kind of peer: frames handled
 * strictly in order by `handle` (a round's work is asynchronous), a coded error sent back and the
 * socket closed at the first failure, and how it ended. The peer (WorkerSession, a relay's
 * session) says what the messages mean.
 */
export class UpstreamLink {
  readonly ended: Promise<Outcome>;
  /** Set once the parent's welcome was taken: a drop after it starts the backoff over. */
  joined = false;
  /** Joins the parent's fragmented messages into a reused buffer, released once `handle` is done with each. */
  readonly joiner = new FrameJoiner();
  private finished = false;
  private fatal: GanError | undefined;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    readonly ws: WebSocket,
    sentToken: boolean,
    private readonly log: () => Logger,
    handle: (data: unknown, isBinary: boolean) => Promise<void>,
  ) {
    this.ended = new Promise((resolve) => {
      let refusedWith: string | undefined;
      // Not upgraded (401/429: the token; 503: the connection limit): no socket, so no refuse message to read.
      ws.on('unexpected-response', (_req, res) => {
        const e = upgradeRefusal(res.statusCode, sentToken);
        if (FATAL.includes(e.code)) {
          this.log().error({ code: e.code }, e.message);
          this.fatal = e;
        }
        refusedWith = e.message;
        ws.terminate();
      });
      ws.binaryType = 'fragments';
      ws.on('message', (data, isBinary) => {
        this.queue = this.queue
          .then(() => handle(this.joiner.join(data), isBinary))
          .finally(() => this.joiner.release())
          .catch((err: unknown) => this.fail(err));
      });
      ws.on('close', (code, reason) => {
        const text = refusedWith ?? (reason.toString() || `close code ${code}`);
        if (this.finished) resolve({ kind: 'finished', reason: text });
        else if (this.fatal) resolve({ kind: 'fatal', reason: text, error: this.fatal });
        else resolve({ kind: 'lost', reason: text, joined: this.joined });
      });
      // 'close' follows 'error'; the error only explains it.
      ws.on('error', (err) => this.log().debug({ err: err.message }, 'socket error'));
    });
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** The parent said bye: the run is over. */
  finish(reason: string): void {
    this.finished = true;
    this.ws.close(1000, reason);
  }

  /** Closes the connection for `err`, sent to the parent first with its code (as when `handle` fails). */
  fail(err: unknown): void {
    const e = isGanError(err) ? err : new GanError('INTERNAL', String(err));
    this.log().error({ code: e.code }, e.message);
    if (FATAL.includes(e.code)) this.fatal = e;
    if (this.open) {
      this.ws.send(encodeMessage({ type: 'error', code: e.code, message: e.message }));
      this.ws.close(closeCodeFor(e.code), `${e.code}: ${e.message}`.slice(0, 120));
    }
  }
}
