import { Worker } from 'node:worker_threads';
import { GanError, type SharedAnswer, type WireDtype } from '@ganfleet/shared/wire';
import type { ThreadReply, ThreadReport, ThreadRequest } from './computeThreadMessages.js';

type Body<K extends ThreadRequest['kind']> = Omit<Extract<ThreadRequest, { kind: K }>, 'id' | 'kind'>;

/** The connection thread's handle on the compute thread (computeThreadMain.ts): each call is one request and its reply. */
export class ComputeThread {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (r: ThreadReply) => void; reject: (e: Error) => void }>();
  /** Where the thread's reports on rounds through shared memory go (the connection of the moment). */
  onReport: (r: ThreadReport) => void = () => undefined;

  constructor() {
    const url = new URL(import.meta.url.endsWith('.ts') ? './computeThreadMain.ts' : './computeThreadMain.js', import.meta.url);
    // Under vitest the sources are TypeScript: the thread needs the same loader.
    this.worker = new Worker(url, import.meta.url.endsWith('.ts') ? { execArgv: ['--import', 'tsx'] } : {});
    this.worker.on('message', (msg: ThreadReply | ThreadReport) => {
      if (!('id' in msg)) return this.onReport(msg);
      const w = this.waiting.get(msg.id);
      this.waiting.delete(msg.id);
      if (msg.kind === 'error') w?.reject(new GanError(msg.code, msg.message));
      else w?.resolve(msg);
    });
    this.worker.on('error', (err) => this.failAll(err));
    this.worker.on('exit', (code) => this.failAll(new GanError('INTERNAL', `compute thread exited with code ${code}`)));
  }

  /** Selects the backend in the compute thread; `threads` sizes the native kernels' pool there; `sharedMemory`: map a parent's offer. */
  async init(backend: string, opts: { dataDir?: string; threads?: number; sharedMemory: boolean }): Promise<Extract<ThreadReply, { kind: 'ready' }>> {
    const { dataDir, threads, sharedMemory } = opts;
    const r = await this.call('init', { backend, sharedMemory, ...(dataDir ? { dataDir } : {}), ...(threads !== undefined ? { threads } : {}) });
    if (r.kind !== 'ready') throw new GanError('INTERNAL', `unexpected ${r.kind} from compute thread`);
    return r;
  }

  /** Starts (or restarts) the run's replica from its welcome frame (which is handed over, not copied); the answer to its offer of shared memory. */
  async start(preset: string, welcome: ArrayBuffer): Promise<{ wireDtype: WireDtype; shared?: Omit<SharedAnswer, 'type'> }> {
    const r = await this.call('start', { preset, welcome }, [welcome]);
    if (r.kind !== 'started') throw new GanError('INTERNAL', `unexpected ${r.kind} from compute thread`);
    return r;
  }

  /**
   * One round that came over the socket: its frame (the first `frameLength` bytes of `frame`,
   * handed over) in, the gradients frame out, ready to send, with `frame` handed back; `spare` is a
   * buffer a previous reply went out in, for the thread to write this one into.
   */
  async round(frame: ArrayBuffer, frameLength: number, spare?: ArrayBuffer): Promise<Extract<ThreadReply, { kind: 'gradients' }>> {
    const r = await this.call('round', { frame, frameLength, ...(spare ? { spare } : {}) }, spare ? [frame, spare] : [frame]);
    if (r.kind !== 'gradients') throw new GanError('INTERNAL', `unexpected ${r.kind} from compute thread`);
    return r;
  }

  async terminate(): Promise<void> {
    await this.worker.terminate();
  }

  private call<K extends ThreadRequest['kind']>(kind: K, body: Body<K>, transfer: ArrayBuffer[] = []): Promise<ThreadReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ kind, id, ...body }, transfer);
    });
  }

  private failAll(err: Error): void {
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }
}
