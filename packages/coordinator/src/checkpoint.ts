import { createHash } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { GanError, type NamedTensor, type TensorSpec, decodeTensors, encodeTensors } from '@ganfleet/shared/wire';
import { type DispenserState } from '@ganfleet/shared/data';
import { type Logger } from '@ganfleet/shared/log';
import type { TrainingSettings } from './settings.js';
import type { RunSnapshot } from './trainingRun.js';

/**
 * Checkpoint file: "GFCK", format version (u32 LE), header length (u32 LE), JSON header, raw
 * float32 tensor bytes (the codec's layout), then a SHA-256 of everything before it. Written to a
 * temporary file, fsynced and renamed, so a crash leaves either the old file or the new one.
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

export async function writeCheckpoint(out: string, runId: string, snapshot: RunSnapshot, training: TrainingSettings, keep = 3): Promise<string> {
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
  const tmp = `${path}.tmp-${process.pid}`;
  const file = await open(tmp, 'w');
  try {
    await file.writev([prefix, headerBytes, data, digest]);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, path);
  await fsyncDir(dir);
  for (const old of (await listCheckpoints(dir)).slice(keep)) await rm(join(dir, old), { force: true });
  return path;
}

/** Reads and verifies one checkpoint; any damage is CHECKPOINT_CORRUPT naming the file. */
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
  const tensors = decodeTensors({ manifest: header.manifest, data: body.subarray(12 + headerLength) });
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
  return {
    path,
    runId: header.runId,
    training: header.training,
    snapshot: {
      round: header.round,
      params,
      adam: { G: { t: header.adamT.G, slots: slots.G }, D: { t: header.adamT.D, slots: slots.D } },
      ...(average.size > 0 ? { average } : {}),
      dispenser: header.dispenser,
    },
  };
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
