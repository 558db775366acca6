/*
 * Entry of the worker's compute thread. TensorFlow.js kernels (wasm, cpu) block the thread
 * they run on for a whole step; running them here keeps the connection thread free to answer
 * heartbeats, so the coordinator can tell a busy worker from a dead one.
 */
import { parentPort } from 'node:worker_threads';
import { GanError, isGanError } from '@ganfleet/shared/wire';
import { type Dataset, loadDataset } from '@ganfleet/shared/data';
import { getPreset, type GradientRequest, Trainer } from '@ganfleet/shared/model';
import { type BackendChoice, selectBackend } from '@ganfleet/shared/backends';
import type { ThreadReply, ThreadRequest } from './computeThreadMessages.js';

const port = parentPort;
if (!port) throw new Error('computeThread must run in a worker thread');

let dataset: Dataset | undefined;
let trainer: Trainer | undefined;
let queue: Promise<void> = Promise.resolve();

port.on('message', (msg: ThreadRequest) => {
  queue = queue
    .then(() => handle(msg))
    .catch((err: unknown) =>
      reply({ kind: 'error', id: msg.id, code: isGanError(err) ? err.code : 'INTERNAL', message: err instanceof Error ? err.message : String(err) }),
    );
});

function reply(msg: ThreadReply, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(msg, transfer);
}

async function handle(msg: ThreadRequest): Promise<void> {
  switch (msg.kind) {
    case 'init': {
      const backend = await selectBackend(msg.backend as BackendChoice);
      dataset = await loadDataset({ split: 'train', ...(msg.dataDir ? { dir: msg.dataDir } : {}) });
      reply({ kind: 'ready', id: msg.id, backend, dataset: { name: dataset.name, count: dataset.count, fingerprint: dataset.fingerprint } });
      return;
    }
    case 'start':
      if (!dataset) throw new GanError('INTERNAL', 'start before init');
      trainer?.dispose();
      trainer = new Trainer(getPreset(msg.preset), dataset);
      trainer.update(msg.params);
      reply({ kind: 'ok', id: msg.id });
      return;
    case 'update':
      if (!trainer) throw new GanError('INTERNAL', 'update before start');
      trainer.update(msg.params);
      reply({ kind: 'ok', id: msg.id });
      return;
    case 'compute': {
      if (!trainer) throw new GanError('INTERNAL', 'compute before start');
      const r = await trainer.compute(msg.request as GradientRequest);
      const buffers = [...r.grads.values(), ...r.stats.values()].map((a) => a.buffer as ArrayBuffer);
      reply({ kind: 'result', id: msg.id, result: r }, uniqueBuffers(buffers));
      return;
    }
  }
}

function uniqueBuffers(buffers: ArrayBuffer[]): ArrayBuffer[] {
  return [...new Set(buffers)];
}
