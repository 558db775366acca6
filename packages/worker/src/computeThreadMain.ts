/*
 * Entry of the worker's compute thread. TensorFlow.js kernels (wasm, cpu) block the thread
 * they run on for a whole step; running them here keeps the connection thread free to answer
 * heartbeats, so the coordinator can tell a busy worker from a dead one.
 */
import { parentPort } from 'node:worker_threads';
import { GanError, type WireDtype, decodeIndices, decodeTensors, encodeFrame, isGanError, parseCoordinatorMessage } from '@ganfleet/shared/wire';
import { type Dataset, loadDataset } from '@ganfleet/shared/data';
import { type ModelPreset, Trainer, getPreset } from '@ganfleet/shared/model';
import { type BackendChoice, selectBackend, setNativeThreads } from '@ganfleet/shared/backends';
import type { ThreadReply, ThreadRequest } from './computeThreadMessages.js';

const port = parentPort;
if (!port) throw new Error('computeThread must run in a worker thread');

let dataset: Dataset | undefined;
/** The joined run: its replica, and how its gradients travel. */
let run: { trainer: Trainer; preset: ModelPreset; wireDtype: WireDtype } | undefined;
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
      // The native kernels' pool belongs to this thread (the addon keeps one per thread that loads it).
      if (msg.threads !== undefined) setNativeThreads(msg.threads);
      const backend = await selectBackend(msg.backend as BackendChoice);
      dataset = await loadDataset({ split: 'train', ...(msg.dataDir ? { dir: msg.dataDir } : {}) });
      reply({ kind: 'ready', id: msg.id, backend, dataset: { name: dataset.name, count: dataset.count, fingerprint: dataset.fingerprint } });
      return;
    }
    case 'start': {
      if (!dataset) throw new GanError('INTERNAL', 'start before init');
      const welcome = parseCoordinatorMessage(new Uint8Array(msg.welcome));
      if (welcome.type !== 'welcome') throw new GanError('INTERNAL', `start with a ${welcome.type} message`);
      const preset = getPreset(msg.preset);
      run?.trainer.dispose();
      run = { trainer: new Trainer(preset, dataset, welcome.run.realLabel), preset, wireDtype: welcome.run.wireDtype };
      const expected = preset.params.map((s) => ({ name: s.name, shape: s.shape }));
      run.trainer.update(new Map(decodeTensors(welcome.params, { expected }).map((t) => [t.name, t.values])));
      reply({ kind: 'started', id: msg.id, wireDtype: run.wireDtype });
      return;
    }
    case 'round': {
      if (!run) throw new GanError('INTERNAL', 'round before start');
      const round = parseCoordinatorMessage(new Uint8Array(msg.frame));
      if (round.type !== 'round') throw new GanError('INTERNAL', `round with a ${round.type} message`);
      const { trainer, preset, wireDtype } = run;
      // The update's values are views of the received frame; the backend copies them into its tensors.
      if (round.update) trainer.update(new Map(decodeTensors(round.update).map((t) => [t.name, t.values])));
      const seeds = decodeIndices(round.seeds);
      if (seeds.length !== 1) throw new GanError('BAD_MESSAGE', `a worker computes one slot per round, got ${seeds.length}`);
      const r = await trainer.compute({
        phase: round.phase,
        batchSize: round.batchSize,
        seed: seeds[0] as number,
        ...(round.indices ? { indices: decodeIndices(round.indices) } : {}),
      });
      const shapes = new Map(preset.params.map((s) => [s.name, s.shape]));
      const grads = [...r.grads].map(([name, values]) => ({ name, shape: shapes.get(name) as number[], values }));
      const stats = [...r.stats].map(([name, values]) => ({ name, shape: [values.length], values }));
      const fields = { type: 'gradients', round: round.round, phase: round.phase, samples: r.samples, loss: r.loss, computeMs: r.computeMs };
      // Written into the buffer the last reply went out in, when the connection thread had it back.
      const frame = encodeFrame(fields, stats.length ? { grads, stats } : { grads }, wireDtype, msg.spare && new Uint8Array(msg.spare));
      const buffer = frame.buffer as ArrayBuffer;
      reply({ kind: 'gradients', id: msg.id, frame: buffer, byteLength: frame.byteLength, round: round.round, loss: r.loss, computeMs: r.computeMs }, [buffer]);
      return;
    }
  }
}
