import { Worker } from 'node:worker_threads';
import { GanError } from '@ganfleet/shared/wire';
import { type BackendInfo } from '@ganfleet/shared/backends';
import type { ThreadReply, ThreadRequest } from './computeThreadMessages.js';
import type { GradientRequest, GradientResult } from '@ganfleet/shared/model';

type Body<K extends ThreadRequest['kind']> = Omit<Extract<ThreadRequest, { kind: K }>, 'id' | 'kind'>;

/** The connection thread's handle on the compute thread (computeThreadMain.ts): each call is one request and its reply. */
export class ComputeThread {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (r: ThreadReply) => void; reject: (e: Error) => void }>();

  constructor() {
    const url = new URL(import.meta.url.endsWith('.ts') ? './computeThreadMain.ts' : './computeThreadMain.js', import.meta.url);
    // Under vitest the sources are TypeScript: the thread needs the same loader.
    this.worker = new Worker(url, import.meta.url.endsWith('.ts') ? { execArgv: ['--import', 'tsx'] } : {});
    this.worker.on('message', (msg: ThreadReply) => {
      const w = this.waiting.get(msg.id);
      this.waiting.delete(msg.id);
      if (msg.kind === 'error') w?.reject(new GanError(msg.code, msg.message));
      else w?.resolve(msg);
    });
    this.worker.on('error', (err) => this.failAll(err));
    this.worker.on('exit', (code) => this.failAll(new GanError('INTERNAL', `compute thread exited with code ${code}`)));
  }

  async init(backend: string, dataDir?: string): Promise<{ backend: BackendInfo; dataset: { name: string; count: number; fingerprint: string } }> {
    const r = await this.call('init', { backend, ...(dataDir ? { dataDir } : {}) });
    if (r.kind !== 'ready') throw new GanError('INTERNAL', `unexpected ${r.kind} from compute thread`);
    return r;
  }

  /** Starts (or restarts) a run's replica with all parameters. */
  async start(preset: string, params: ReadonlyMap<string, Float32Array>): Promise<void> {
    const owned = ownedCopies(params);
    await this.call('start', { preset, params: owned }, buffersOf(owned));
  }

  async update(params: ReadonlyMap<string, Float32Array>): Promise<void> {
    const owned = ownedCopies(params);
    await this.call('update', { params: owned }, buffersOf(owned));
  }

  async compute(request: GradientRequest): Promise<GradientResult> {
    const r = await this.call('compute', { request });
    if (r.kind !== 'result') throw new GanError('INTERNAL', `unexpected ${r.kind} from compute thread`);
    return r.result;
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

/**
 * Arrays that own their whole buffer (what decodeTensors copies out of a misaligned frame) move to
 * the thread as they are. Views into a received frame are copied first: cloning a view would copy
 * its whole underlying buffer, and transferring it would take the frame away from its siblings.
 */
function ownedCopies(params: ReadonlyMap<string, Float32Array>): Map<string, Float32Array> {
  return new Map([...params].map(([name, v]) => [name, v.byteOffset === 0 && v.byteLength === v.buffer.byteLength ? v : v.slice()]));
}

function buffersOf(params: Map<string, Float32Array>): ArrayBuffer[] {
  return [...params.values()].map((a) => a.buffer as ArrayBuffer);
}
