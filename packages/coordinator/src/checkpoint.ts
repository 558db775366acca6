import { createHash } from 'node:crypto';
import { mkdir, open, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { GanError, type NamedTensor, PHASES, type TensorSpec, decodeTensors, encodeTensors } from '@ganfleet/shared/wire';
import type { DispenserState } from '@ganfleet/shared/data';
import type { Logger } from '@ganfleet/shared/log';
import { type ModelPreset, getPreset, sizeOf, specsOf } from '@ganfleet/shared/model';
import { type TrainingSettings, storedTrainingSettings } from './settings.js';
import type { RunSnapshot } from './trainingRun.js';

/*
 * Checkpoint file: "GFCK", format version (u32 LE), header length (u32 LE), JSON header, raw
 * float32 tensor bytes (the codec's layout), then a SHA-256 of everything before it.
 */
const MAGIC = Buffer.from('GFCK');
const FORMAT_VERSION = 1;
const DIGEST_BYTES = 32;
const FILE_PATTERN = /^ckpt-(\d{9})\.gfck$/;

interface Header {
  runId: string;
  savedAt: string;
  round: number;
  adamT: { G: number; D: number };
  dispenser: DispenserState;
  /** The run's training settings: a resumed run keeps them, so `--resume` needs no other flags. */
  training: TrainingSettings;
  manifest: TensorSpec[];
}

export interface Checkpoint {
  path: string;
  runId: string;
  snapshot: RunSnapshot;
  training: TrainingSettings;
}

export const checkpointDir = (out: string): string => join(out, 'checkpoints');

/**
 * Writes a checkpoint of `snapshot` under `out` and keeps the newest `keep`. A snapshot that is
 * incomplete or holds a non-finite value is never written (NON_FINITE or CHECKPOINT_CORRUPT).
 */
export async function writeCheckpoint(out: string, runId: string, snapshot: RunSnapshot, training: TrainingSettings, keep = 3): Promise<string> {
  const problem = snapshotProblem(snapshot, training);
  if (problem) throw new GanError(problem.code, `checkpoint not written: ${problem.message}`);
  // Everything is copied out synchronously, before the first await: training may apply a round
  // while the file is being written, and the checkpoint must be of one round.
  const tensors: NamedTensor[] = [];
  for (const [name, values] of snapshot.params) tensors.push({ name: `param/${name}`, shape: [values.length], values });
  for (const [name, values] of snapshot.average ?? []) tensors.push({ name: `average/${name}`, shape: [values.length], values });
  for (const g of ['G', 'D'] as const) {
    for (const [name, slot] of snapshot.adam[g].slots) {
      tensors.push({ name: `adam${g}.m/${name}`, shape: [slot.m.length], values: slot.m });
      tensors.push({ name: `adam${g}.v/${name}`, shape: [slot.v.length], values: slot.v });
    }
  }
  const encoded = encodeTensors(tensors);
  const header: Header = {
    runId,
    savedAt: new Date().toISOString(),
    round: snapshot.round,
    adamT: { G: snapshot.adam.G.t, D: snapshot.adam.D.t },
    dispenser: snapshot.dispenser,
    training,
    manifest: encoded.manifest,
  };
  const headerBytes = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(12);
  MAGIC.copy(prefix, 0);
  prefix.writeUInt32LE(FORMAT_VERSION, 4);
  prefix.writeUInt32LE(headerBytes.length, 8);
  // Without a scratch buffer the codec returns freshly allocated bytes: a copy of this moment.
  const data = encoded.data;
  const digest = createHash('sha256').update(prefix).update(headerBytes).update(data).digest();

  const dir = checkpointDir(out);
  await mkdir(dir, { recursive: true });
  const path = join(dir, `ckpt-${String(snapshot.round).padStart(9, '0')}.gfck`);
  // Temporary file, fsync, rename: a crash leaves the old file or the new one. The directory's fsync makes the rename durable.
  await writeFileAtomic(path, Buffer.concat([prefix, headerBytes, data, digest]));
  await fsyncDir(dir);
  for (const old of (await listCheckpoints(dir)).slice(keep)) await rm(join(dir, old), { force: true });
  return path;
}

/**
 * Reads and verifies one checkpoint: its checksum, and that it is complete (every parameter,
 * moment and average the run needs, of the right sizes) and finite. Any failure is
 * CHECKPOINT_CORRUPT naming the file.
 */
export async function readCheckpoint(path: string): Promise<Checkpoint> {
  const bytes = await readFile(path);
  const corrupt = (why: string) => new GanError('CHECKPOINT_CORRUPT', `${path}: ${why}`);
  if (bytes.length < 12 + DIGEST_BYTES || !bytes.subarray(0, 4).equals(MAGIC)) throw corrupt('not a ganfleet checkpoint (bad magic or too short)');
  if (bytes.readUInt32LE(4) !== FORMAT_VERSION) throw corrupt(`format version ${bytes.readUInt32LE(4)}, expected ${FORMAT_VERSION}`);
  const body = bytes.subarray(0, bytes.length - DIGEST_BYTES);
  const digest = createHash('sha256').update(body).digest();
  if (!digest.equals(bytes.subarray(bytes.length - DIGEST_BYTES))) throw corrupt('checksum mismatch (truncated or corrupted)');
  const headerLength = bytes.readUInt32LE(8);
  if (12 + headerLength > body.length) throw corrupt('header length beyond the file');
  let header: Header;
  try {
    header = JSON.parse(body.subarray(12, 12 + headerLength).toString('utf8')) as Header;
  } catch (err) {
    throw corrupt(`unreadable header (${String(err)})`);
  }
  let tensors: NamedTensor[];
  try {
    tensors = decodeTensors({ manifest: header.manifest, data: body.subarray(12 + headerLength) });
  } catch (err) {
    throw corrupt(`unreadable tensors (${err instanceof Error ? err.message : String(err)})`);
  }
  const params = new Map<string, Float32Array>();
  const average = new Map<string, Float32Array>();
  const slots = { G: new Map<string, { m: Float32Array; v: Float32Array }>(), D: new Map<string, { m: Float32Array; v: Float32Array }>() };
  for (const t of tensors) {
    const [kind, ...rest] = t.name.split('/');
    const name = rest.join('/');
    // Copy out of the file buffer so the snapshot owns aligned arrays.
    const values = t.values.slice();
    if (kind === 'param') params.set(name, values);
    else if (kind === 'average') average.set(name, values);
    else {
      const match = /^adam([GD])\.([mv])$/.exec(kind ?? '');
      if (!match) throw corrupt(`unknown tensor ${t.name}`);
      const group = slots[match[1] as 'G' | 'D'];
      const slot = group.get(name) ?? { m: new Float32Array(0), v: new Float32Array(0) };
      slot[match[2] as 'm' | 'v'] = values;
      group.set(name, slot);
    }
  }
  const snapshot: RunSnapshot = {
    round: header.round,
    params,
    adam: { G: { t: header.adamT?.G, slots: slots.G }, D: { t: header.adamT?.D, slots: slots.D } },
    ...(average.size > 0 ? { average } : {}),
    dispenser: header.dispenser,
  };
  let training: TrainingSettings;
  try {
    training = storedTrainingSettings(header.training);
  } catch (err) {
    throw corrupt(err instanceof Error ? err.message : String(err));
  }
  const problem = snapshotProblem(snapshot, training);
  if (problem) throw corrupt(problem.message);
  return { path, runId: header.runId, training, snapshot };
}

/** Why a snapshot cannot be a checkpoint of a run with these settings (incomplete, wrong sizes, non-finite), or undefined. */
function snapshotProblem(s: RunSnapshot, training: TrainingSettings | undefined): { code: 'CHECKPOINT_CORRUPT' | 'NON_FINITE'; message: string } | undefined {
  const incomplete = (message: string) => ({ code: 'CHECKPOINT_CORRUPT' as const, message });
  if (typeof training !== 'object' || training === null || typeof training.preset !== 'string') return incomplete('no training settings');
  let preset: ModelPreset;
  try {
    preset = getPreset(training.preset);
  } catch {
    return incomplete(`unknown preset ${JSON.stringify(training.preset)}`);
  }
  if (!Number.isSafeInteger(s.round) || s.round < 0) return incomplete(`round ${String(s.round)}`);
  const arrays: [string, Float32Array | undefined, number][] = preset.params.map((p) => [`parameter ${p.name}`, s.params.get(p.name), sizeOf(p.shape)]);
  if (s.params.size !== preset.params.length) return incomplete(`${s.params.size} parameters, the preset has ${preset.params.length}`);
  for (const phase of PHASES) {
    const { t, slots } = s.adam[phase];
    if (!Number.isSafeInteger(t) || t < 0) return incomplete(`Adam ${phase} step ${String(t)}`);
    const trainable = specsOf(preset, phase);
    if (slots.size !== (t > 0 ? trainable.length : 0)) return incomplete(`Adam ${phase} has moments of ${slots.size} parameters after ${t} steps`);
    if (t > 0)
      for (const p of trainable)
        arrays.push(
          [`Adam ${phase} m of ${p.name}`, slots.get(p.name)?.m, sizeOf(p.shape)],
          [`Adam ${phase} v of ${p.name}`, slots.get(p.name)?.v, sizeOf(p.shape)],
        );
  }
  const averaged = training.emaDecay > 0 ? specsOf(preset, 'G') : [];
  if ((s.average?.size ?? 0) !== averaged.length) return incomplete(`an average of ${s.average?.size ?? 0} parameters, the run averages ${averaged.length}`);
  for (const p of averaged) arrays.push([`average of ${p.name}`, s.average?.get(p.name), sizeOf(p.shape)]);
  for (const [what, values, length] of arrays) {
    if (values?.length !== length) return incomplete(`${what}: ${values?.length ?? 'missing'} values, expected ${length}`);
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i])) return { code: 'NON_FINITE', message: `${what} has ${values[i]} at index ${i}` };
    }
  }
  return undefined;
}

/** The newest readable checkpoint under `out`; damaged ones are logged and skipped. */
export async function loadLatestCheckpoint(out: string, log: Logger): Promise<Checkpoint | undefined> {
  const dir = checkpointDir(out);
  for (const name of await listCheckpoints(dir)) {
    try {
      return await readCheckpoint(join(dir, name));
    } catch (err) {
      const code = err instanceof GanError ? err.code : 'CHECKPOINT_CORRUPT';
      log.warn({ code, file: name }, `skipping checkpoint: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return undefined;
}

/** Checkpoint file names, newest first. */
async function listCheckpoints(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  return names.filter((n) => FILE_PATTERN.test(n)).sort((a, b) => b.localeCompare(a));
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
