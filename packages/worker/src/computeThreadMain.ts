/*
 * Entry of the worker's compute thread. TensorFlow.js kernels (wasm, cpu) block the thread
 * they run on for a whole step; running them here keeps the connection thread free to answer
 * heartbeats, so the coordinator can tell a busy worker from a dead one.
 */
import { parentPort } from 'node:worker_threads';
import {
  GanError,
  type Round,
  type WireDtype,
  bodyFirstFrame,
  decodeIndices,
  decodeTensors,
  encodeFrame,
  isGanError,
  parseCoordinatorMessage,
} from '@ganfleet/shared/wire';
import { type Dataset, loadDataset } from '@ganfleet/shared/data';
import { type GradientRequest, type ModelPreset, Trainer, batchNormStatSpecs, getPreset, specsOf } from '@ganfleet/shared/model';
import { type BackendChoice, type MapShared, loadMapShared, selectBackend, setNativeThreads, sharedMemoryStatus } from '@ganfleet/shared/backends';
import { SharedRegion } from '@ganfleet/shared/link';
import type { ThreadReply, ThreadRequest } from './computeThreadMessages.js';

const port = parentPort;
if (!port) throw new Error('computeThread must run in a worker thread');

let dataset: Dataset | undefined;
/** The joined run: its replica, and how its gradients travel. */
let run: { trainer: Trainer; preset: ModelPreset; wireDtype: WireDtype } | undefined;
let queue: Promise<void> = Promise.resolve();
/** Maps a parent's region, where asked for and the addon loads. */
let mapShared: MapShared | undefined;
/** The region the parent offered and this thread mapped; in use once a round came through it (the parent then uses it too). */
let shared: { region: SharedRegion; inUse: boolean } | undefined;

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
      const canMap = msg.sharedMemory ? await loadMapShared() : { why: 'turned off (--no-shared-memory)' };
      mapShared = 'map' in canMap ? canMap.map : undefined;
      reply({
        kind: 'ready',
        id: msg.id,
        backend,
        dataset: { name: dataset.name, count: dataset.count, fingerprint: dataset.fingerprint },
        sharedMemory: sharedMemoryStatus(canMap),
      });
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
      shared = undefined;
      const offer = welcome.shared;
      reply({ kind: 'started', id: msg.id, wireDtype: run.wireDtype, ...(offer ? { shared: answerOffer(offer.path, offer.bytes) } : {}) });
      return;
    }
    case 'round': {
      if (!run) throw new GanError('INTERNAL', 'round before start');
      const round = parseCoordinatorMessage(roundFrame(msg.frame, msg.frameLength));
      if (round.type !== 'round') throw new GanError('INTERNAL', `round with a ${round.type} message`);
      const { trainer, preset, wireDtype } = run;
      // The update's values are views of the received frame; the backend copies them into its tensors.
      if (round.update) trainer.update(new Map(decodeTensors(round.update).map((t) => [t.name, t.values])));
      const seeds = decodeIndices(round.seeds);
      if (seeds.length !== 1) throw new GanError('BAD_MESSAGE', `a worker computes one slot per round, got ${seeds.length}`);
      const req: GradientRequest = {
        phase: round.phase,
        batchSize: round.batchSize,
        seed: seeds[0] as number,
        ...(round.indices ? { indices: decodeIndices(round.indices) } : {}),
      };
      // Written into the region once the parent uses it, else into the buffer the last reply went out in (when the connection thread had it back).
      const spare = shared?.inUse ? shared.region.up : msg.spare && new Uint8Array(msg.spare);
      const { frame, loss, computeMs } =
        wireDtype === 'float32'
          ? await computeInPlace(trainer, preset, round, req, spare)
          : await computeThenEncode(trainer, preset, round, req, wireDtype, spare);
      const buffer = frame.buffer as ArrayBuffer;
      const fields = { round: round.round, loss, computeMs, byteLength: frame.byteLength, ...(msg.frame ? { received: msg.frame } : {}) };
      const received = msg.frame ? [msg.frame] : [];
      if (shared?.inUse && frame.byteOffset === shared.region.up.byteOffset && buffer === shared.region.up.buffer)
        reply({ kind: 'gradients', id: msg.id, ...fields }, received);
      else reply({ kind: 'gradients', id: msg.id, frame: buffer, ...fields }, [buffer, ...received]);
      return;
    }
  }
}

/** Maps the region a welcome offers: the nonce it starts with, or why not. */
function answerOffer(path: string, bytes: number): { nonce: Uint8Array } | { declined: string } {
  if (!mapShared) return { declined: 'this worker does not map shared memory' };
  try {
    const region = SharedRegion.open(mapShared, path, bytes);
    shared = { region, inUse: false };
    return { nonce: region.nonce() };
  } catch (err) {
    return { declined: err instanceof Error ? err.message : String(err) };
  }
}

/** A round's frame: as it came off the socket, or without `frame` in the shared region (which is then in use both ways). */
function roundFrame(frame: ArrayBuffer | undefined, length: number): Uint8Array {
  if (frame) return new Uint8Array(frame, 0, length);
  if (!shared) throw new GanError('BAD_MESSAGE', 'sharedFrame without shared memory');
  if (length > shared.region.bytes) throw new GanError('BAD_FRAME', `sharedFrame of ${length} bytes in a region of ${shared.region.bytes}`);
  shared.inUse = true;
  return shared.region.down.subarray(0, length);
}

/** A reply frame and what the connection thread logs of it. */
interface ReplyFrame {
  frame: Uint8Array;
  loss: number;
  computeMs: number;
}

const replyFields = (round: Round, r: { samples: number; loss: number; computeMs: number }) => ({
  type: 'gradients',
  round: round.round,
  phase: round.phase,
  samples: r.samples,
  loss: r.loss,
  computeMs: r.computeMs,
});

/** float32 on the wire: the backend writes the gradients straight into the frame's body (no array per tensor, no copy). */
async function computeInPlace(trainer: Trainer, preset: ModelPreset, round: Round, req: GradientRequest, spare?: Uint8Array): Promise<ReplyFrame> {
  const grads = specsOf(preset, round.phase).map((s) => ({ name: s.name, shape: s.shape }));
  const stats = round.phase === 'G' ? batchNormStatSpecs(preset) : [];
  // Stand-ins of the same kinds as the real values (non-integer floats pack to 9 bytes), so the body rarely has to move.
  const frame = bodyFirstFrame(stats.length ? { grads, stats } : { grads }, replyFields(round, { samples: req.batchSize, loss: 0.5, computeMs: 0.5 }), spare);
  const targets = (specs: { name: string }[], views: Float32Array[] = []) => new Map(specs.map((s, i) => [s.name, views[i] as Float32Array]));
  const into = { grads: targets(grads, frame.views.grads), stats: targets(stats, frame.views.stats) };
  const r = await trainer.compute(req, into);
  // Every value must have landed in the frame: a result the trainer kept elsewhere would leave zeros there.
  for (const [field, wanted] of [['grads', into.grads] as const, ['stats', into.stats] as const]) {
    const got = r[field];
    if (got.size !== wanted.size || [...wanted].some(([name, view]) => got.get(name) !== view))
      throw new GanError('INTERNAL', `the trainer's ${field} (${[...got.keys()].join(', ')}) are not the frame's (${[...wanted.keys()].join(', ')})`);
  }
  return { frame: frame.finish(replyFields(round, r)), loss: r.loss, computeMs: r.computeMs };
}

/** float16 on the wire: computed into arrays, then converted while encoding. */
async function computeThenEncode(
  trainer: Trainer,
  preset: ModelPreset,
  round: Round,
  req: GradientRequest,
  wireDtype: WireDtype,
  spare?: Uint8Array,
): Promise<ReplyFrame> {
  const r = await trainer.compute(req);
  const shapes = new Map(preset.params.map((s) => [s.name, s.shape]));
  const grads = [...r.grads].map(([name, values]) => ({ name, shape: shapes.get(name) as number[], values }));
  const stats = [...r.stats].map(([name, values]) => ({ name, shape: [values.length], values }));
  const frame = encodeFrame(replyFields(round, r), stats.length ? { grads, stats } : { grads }, wireDtype, spare);
  return { frame, loss: r.loss, computeMs: r.computeMs };
}
