import { hostname } from 'node:os';
import WebSocket from 'ws';
import { type CoordinatorToWorker, GanError, PROTOCOL_VERSION, type WireDtype, encodeMessage, parseCoordinatorMessage } from '@ganfleet/shared/wire';
import { type Outcome, UpstreamLink, type UpstreamOptions, dial, keepConnected, sendFragmented } from '@ganfleet/shared/link';
import type { Logger } from '@ganfleet/shared/log';
import type { BackendChoice } from '@ganfleet/shared/backends';
import { ComputeThread } from './computeThread.js';
import type { ThreadReport } from './computeThreadMessages.js';

/** The coordinator's (or a relay's) address, --token, --ca and --random-mask, and the worker's own settings. */
export interface WorkerConfig extends UpstreamOptions {
  backend: BackendChoice;
  dataDir?: string;
  /** Stop retrying after the coordinator has been unreachable this long (seconds). */
  giveUpAfterS?: number;
  /** Threads of the native backend's kernels (--threads); default 1. Results do not depend on it. */
  threads?: number;
  /** Take a parent's offer of shared memory (default true; --no-shared-memory): it makes one only on its own machine. */
  sharedMemory?: boolean;
  log: Logger;
}

export interface WorkerHandle {
  /** Resolves when the coordinator says training is over; rejects on a fatal refusal or after --give-up-after. */
  done: Promise<{ rounds: number; reason: string }>;
  close(): Promise<void>;
}

/**
 * Connects to a coordinator, joins the run and answers rounds until told to stop. Gradients
 * are computed on a separate thread; the connection comes back by itself (with backoff) when
 * the coordinator restarts or the network drops.
 */
export async function startWorker(config: WorkerConfig): Promise<WorkerHandle> {
  const log = config.log.child({ component: 'worker' });
  const thread = new ComputeThread();
  const { backend, dataset, sharedMemory } = await thread.init(config.backend, {
    sharedMemory: config.sharedMemory ?? true,
    ...(config.dataDir ? { dataDir: config.dataDir } : {}),
    ...(config.threads !== undefined ? { threads: config.threads } : {}),
  });
  log.info({ backend: backend.name, reason: backend.reason, skipped: backend.skipped, dataset: dataset.name }, `backend ${backend.name}`);
  log.info(sharedMemory, 'shared memory');
  let stopped = false;
  let current: WebSocket | undefined;
  let rounds = 0;

  /** One connection to its end. */
  const connect = async (): Promise<Outcome> => {
    if (stopped) return { kind: 'finished', reason: 'stopped' };
    const ws = dial(config);
    current = ws;
    const session = new WorkerSession(ws, thread, dataset.fingerprint, Boolean(config.token), log);
    ws.on('open', () => {
      const wireDtypes: WireDtype[] = ['float32', 'float16'];
      ws.send(
        encodeMessage({
          type: 'hello',
          version: PROTOCOL_VERSION,
          role: 'worker',
          backend: backend.name,
          device: `${hostname()} (${backend.name})`,
          capabilities: { wireDtypes, ...(sharedMemory.available ? { sharedMemory: true } : {}) },
        }),
      );
    });
    const outcome = await session.link.ended;
    rounds += session.rounds;
    return outcome;
  };

  const run = async (): Promise<{ rounds: number; reason: string }> => {
    const reason = await keepConnected(connect, { url: config.url, giveUpAfterS: config.giveUpAfterS ?? 300, log, stopped: () => stopped });
    return { rounds, reason };
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

/** One connection: welcome, rounds, until bye, a refusal, or the socket dropping. */
class WorkerSession {
  readonly link: UpstreamLink;
  rounds = 0;
  /** The buffer the last gradients went out in, once sent: the compute thread writes the next ones into it. */
  private spare: ArrayBuffer | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly thread: ComputeThread,
    private readonly fingerprint: string,
    sentToken: boolean,
    private log: Logger,
  ) {
    this.link = new UpstreamLink(
      ws,
      sentToken,
      () => this.log,
      (data, isBinary) => this.onMessage(data, isBinary),
    );
    thread.onReport = (r) => this.onReport(r);
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
        const { shared } = await this.thread.start(run.preset, ownedBuffer(data));
        this.link.joined = true;
        this.log.info({ runId: run.runId, preset: run.preset, round: msg.round }, 'joined run');
        if (shared) {
          this.ws.send(encodeMessage({ type: 'sharedAnswer', ...shared }));
          if (shared.declined) this.log.info({ reason: shared.declined }, 'shared memory declined: round frames over the socket');
        }
        return;
      }
      case 'round':
        return this.onRound(data);
      case 'bye':
        this.log.info({ rounds: this.rounds, reason: msg.reason }, 'coordinator said bye');
        this.link.finish(msg.reason);
        return;
      case 'refuse':
      case 'error':
        throw new GanError(msg.code, `coordinator: ${msg.type === 'refuse' ? msg.reason : msg.message}`);
      default:
        throw new GanError('BAD_MESSAGE', `unexpected ${msg.type} message`);
    }
  }

  /**
   * A round over the socket: its frame goes to the compute thread as it came; the gradients frame
   * it returns goes out as it is.
   */
  private async onRound(data: unknown): Promise<void> {
    if (!this.link.joined) throw new GanError('BAD_MESSAGE', 'round before welcome');
    const spare = this.spare;
    this.spare = undefined;
    const bytes = data as Uint8Array;
    const frame = this.link.joiner.owns(bytes) ? (bytes.buffer as ArrayBuffer) : ownedBuffer(data);
    const r = await this.thread.round(frame, bytes.byteLength, spare);
    this.link.joiner.adopt(r.received);
    this.sendReply(r.frame, r.byteLength);
    this.roundDone(r, false);
  }

  /** A round the compute thread answered through shared memory (or one there that failed). */
  private onReport(r: ThreadReport): void {
    if (r.kind === 'sharedFailed') return this.link.fail(new GanError(r.code, r.message));
    if (r.frame) this.sendReply(r.frame, r.byteLength);
    this.roundDone(r, !r.frame);
  }

  private sendReply(out: ArrayBuffer, byteLength: number): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    // Back to the compute thread for the next reply once the socket is done with it.
    sendFragmented(this.ws, [new Uint8Array(out, 0, byteLength)], (err) => {
      if (!err) this.spare = out;
    });
  }

  private roundDone(r: { round: number; loss: number; computeMs: number }, shared: boolean): void {
    this.rounds += 1;
    this.log.debug({ round: r.round, loss: r.loss, computeMs: r.computeMs, shared }, 'round done');
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
