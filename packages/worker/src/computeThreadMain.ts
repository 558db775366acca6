/*
 * Entry of the worker's compute thread. TensorFlow.js kernels (wasm, cpu) block the thread
 * they run on for a whole step; running them here keeps the connection thread free to answer
 * heartbeats, so the coordinator can tell a busy worker from a dead one.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { parentPort } from 'node:worker_threads';
import {
  GanError,
  type EncodedTensors,
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
import { type BackendChoice, type SharedMemoryCalls, loadSharedMemory, selectBackend, setNativeThreads, sharedMemoryStatus } from '@ganfleet/shared/backends';
import { SharedRegion } from '@ganfleet/shared/link';
import type { ThreadReply, ThreadReport, ThreadRequest } from './computeThreadMessages.js';

const port = parentPort;
if (!port) throw new Error('computeThread must run in a worker thread');

let dataset: Dataset | undefined;
/** The joined run: its replica, and how its gradients travel. */
let run: { trainer: Trainer; preset: ModelPreset; wireDtype: WireDtype } | undefined;
let queue: Promise<void> = Promise.resolve();
/** Maps a parent's region and rings its doorbells, where asked for and possible here. */
let sharedMemory: SharedMemoryCalls | undefined;
/** The region the parent offered and this thread mapped: its rounds are served from it (serveRegion) while it is this one. */
let shared: SharedRegion | undefined;

/** How long this thread blocks on the region's doorbell before it looks at its messages again. */
const WAIT_SLICE_MS = 20;

port.on('message', (msg: ThreadRequest) => {
  // A new run's region replaces the old at once: a round still waiting for its parameters in the old one gives up (writtenUpTo).
  if (msg.kind === 'start') shared = undefined;
  queue = queue
    .then(() => handle(msg))
    .catch((err: unknown) =>
      reply({ kind: 'error', id: msg.id, code: isGanError(err) ? err.code : 'INTERNAL', message: err instanceof Error ? err.message : String(err) }),
    );
});

function reply(msg: ThreadReply | ThreadReport, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(msg, transfer);
}

async function handle(msg: ThreadRequest): Promise<void> {
  switch (msg.kind) {
    case 'init': {
      // The native kernels' pool belongs to this thread (the addon keeps one per thread that loads it).
      if (msg.threads !== undefined) setNativeThreads(msg.threads);
      const backend = await selectBackend(msg.backend as BackendChoice);
      dataset = await loadDataset({ split: 'train', ...(msg.dataDir ? { dir: msg.dataDir } : {}) });
      const canMap = msg.sharedMemory ? await loadSharedMemory() : { why: 'turned off (--no-shared-memory)' };
      sharedMemory = 'calls' in canMap ? canMap.calls : undefined;
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
      if (shared) void serveRegion(shared);
      return;
    }
    case 'round': {
      // Into the buffer the last reply went out in, when the connection thread had it back.
      const { frame, round, loss, computeMs } = await computeRound(new Uint8Array(msg.frame, 0, msg.frameLength), msg.spare && new Uint8Array(msg.spare));
      const buffer = frame.buffer as ArrayBuffer;
      reply({ kind: 'gradients', id: msg.id, frame: buffer, byteLength: frame.byteLength, received: msg.frame, round, loss, computeMs }, [buffer, msg.frame]);
      return;
    }
  }
}

/** Maps the region a welcome offers: the nonce it starts with, or why not. */
function answerOffer(path: string, bytes: number): { nonce: Uint8Array } | { declined: string } {
  if (!sharedMemory) return { declined: 'this worker does not map shared memory' };
  try {
    shared = SharedRegion.open(sharedMemory, path, bytes);
    return { nonce: shared.nonce() };
  } catch (err) {
    return { declined: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Answers the rounds the parent rings in `region` while it is this thread's region: waits on the
 * doorbell itself (no trip through the connection thread), in slices so that the connection
 * thread's messages still get in, reads the round in place, writes the gradients straight into the
 * region's second half and rings back; the connection thread hears of each round afterwards. A
 * round that fails ends it: the connection thread closes the connection with the error's code.
 */
async function serveRegion(region: SharedRegion): Promise<void> {
  while (shared === region) {
    if (!region.wait('down', WAIT_SLICE_MS)) {
      await nextTurn();
      continue;
    }
    const done = queue.then(() => sharedRound(region));
    queue = done.catch(() => undefined);
    try {
      await done;
    } catch (err) {
      // Replaced by a new run's region meanwhile: nothing to report to its connection.
      if (shared !== region) return;
      shared = undefined;
      reply({ kind: 'sharedFailed', code: isGanError(err) ? err.code : 'INTERNAL', message: err instanceof Error ? err.message : String(err) });
    }
  }
}

async function sharedRound(region: SharedRegion): Promise<void> {
  const { frame, round, loss, computeMs } = await computeRound(region.announced('down'), region.up, (end) => writtenUpTo(region, end));
  const report = { kind: 'sharedRound', round, loss, computeMs, byteLength: frame.byteLength } as const;
  if (frame.buffer === region.up.buffer && frame.byteOffset === region.up.byteOffset) {
    region.announce('up', frame.byteLength);
    reply(report);
  } else {
    // Larger than the region (it is sized for every gradient, so this should not happen): the socket carries it.
    const buffer = frame.buffer as ArrayBuffer;
    reply({ ...report, frame: buffer }, [buffer]);
  }
}

/** Until the parent has written the first `end` bytes of the frame it announced last in `region` (it announces a round before its body is written). */
async function writtenUpTo(region: SharedRegion, end: number): Promise<void> {
  while (!region.waitWritten('down', end, WAIT_SLICE_MS)) {
    await nextTurn();
    if (shared !== region) throw new GanError('INTERNAL', 'the region was replaced while a round waited for its parameters');
  }
}

/**
 * One round: its frame parsed (the update's values are views of it, copied into the backend's
 * tensors, each once `written` says the parent has written it, where it says), the gradients
 * computed into a reply frame, written into `spare` where it fits.
 */
async function computeRound(bytes: Uint8Array, spare?: Uint8Array, written?: (end: number) => Promise<void>): Promise<ReplyFrame & { round: number }> {
  if (!run) throw new GanError('INTERNAL', 'round before start');
  const round = parseCoordinatorMessage(bytes);
  if (round.type !== 'round') throw new GanError('BAD_MESSAGE', `expected a round, got a ${round.type} message`);
  const { trainer, preset, wireDtype } = run;
  if (round.update) await takeUpdate(trainer, round.update, bytes, written);
  const seeds = decodeIndices(round.seeds);
  if (seeds.length !== 1) throw new GanError('BAD_MESSAGE', `a worker computes one slot per round, got ${seeds.length}`);
  const req: GradientRequest = {
    phase: round.phase,
    batchSize: round.batchSize,
    seed: seeds[0] as number,
    ...(round.indices ? { indices: decodeIndices(round.indices) } : {}),
  };
  const r =
    wireDtype === 'float32' ? await computeInPlace(trainer, preset, round, req, spare) : await computeThenEncode(trainer, preset, round, req, wireDtype, spare);
  return { ...r, round: round.round };
}

/**
 * The update's parameters into the trainer, each as soon as `written` says it is in `frame`:
 * float32 values are views of the frame (decodeTensors reads none), anything else is read while
 * decoding, so the whole body must be there first.
 */
async function takeUpdate(trainer: Trainer, update: EncodedTensors, frame: Uint8Array, written?: (end: number) => Promise<void>): Promise<void> {
  const piecewise = written && update.manifest.every((s) => s.dtype === 'float32');
  if (written && !piecewise) await written(frame.byteLength);
  for (const { name, values } of decodeTensors(update)) {
    if (piecewise) {
      if (values.buffer !== frame.buffer) throw new GanError('INTERNAL', `parameter ${name} was read before it was written`);
      await written(values.byteOffset - frame.byteOffset + values.byteLength);
    }
    trainer.update(new Map([[name, values]]));
  }
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
