import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { memoryLogger } from '@ganfleet/shared/log';
import { getPreset } from '@ganfleet/shared/model';
import { checkpointDir, loadLatestCheckpoint, readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { TRAINING_SETTINGS, type TrainingSettings, runSettings } from './settings.js';
import { sameBytes } from '../../../tests/helpers/bytes.js';
import { batchContribution } from './paramStore.js';
import { TrainingRun } from './trainingRun.js';

const settings = runSettings({ seed: 2, batchSize: 4, schedule: { pretrainSteps: 1, dStepsPerG: 1, steps: 10 } });
const training = Object.fromEntries(TRAINING_SETTINGS.map((k) => [k, settings[k]])) as TrainingSettings;

function runAt(rounds: number): TrainingRun {
  const run = new TrainingRun(settings, getPreset('mlp'), { count: 100, meanImage: new Float32Array(784).fill(-0.5) });
  // Synthetic gradients: enough to move parameters, Adam state and the data dispenser.
  for (let r = 0; r < rounds; r++) {
    const tasks = run.plan(2);
    const grads = new Map(
      run.preset.params.filter((s) => s.network === run.phase).map((s) => [s.name, new Float32Array(s.shape.reduce((a, b) => a * b, 1)).fill(0.01 * (r + 1))]),
    );
    run.complete(tasks.map(() => batchContribution({ samples: 4, loss: 1, grads })));
  }
  return run;
}

/** Rewrites a checkpoint file through `edit` (the body and its JSON header bytes) and signs it again, as an attacker could. */
async function resign(path: string, edit: (body: Buffer, header: Buffer) => void): Promise<void> {
  const bytes = await readFile(path);
  const body = Buffer.from(bytes.subarray(0, bytes.length - 32));
  edit(body, body.subarray(12, 12 + body.readUInt32LE(8)));
  await writeFile(path, Buffer.concat([body, createHash('sha256').update(body).digest()]));
}

describe('checkpoints', () => {
  let out: string;
  beforeEach(async () => {
    out = await mkdtemp(join(tmpdir(), 'ganfleet-ckpt-'));
  });
  afterEach(async () => {
    await rm(out, { recursive: true, force: true });
  });

  it('restores parameters, both Adam states, the averaged generator, the round and the data position exactly', async () => {
    const original = runAt(5);
    const path = await writeCheckpoint(out, 'run1', original.snapshot(), training);
    const ckpt = await readCheckpoint(path);
    expect(ckpt.runId).toBe('run1');
    expect(ckpt.training).toEqual(training);
    const restored = runAt(0);
    restored.restore(ckpt.snapshot);
    expect(restored.round).toBe(5);
    for (const [name, values] of original.store.params) expect(sameBytes(restored.store.params.get(name), values), name).toBe(true);
    for (const g of ['G', 'D'] as const) {
      expect(restored.store.adam[g].t).toBe(original.store.adam[g].t);
      for (const [name, slot] of original.store.adam[g].slots) {
        expect(sameBytes(restored.store.adam[g].slots.get(name)?.m, slot.m), `${g} m ${name}`).toBe(true);
        expect(sameBytes(restored.store.adam[g].slots.get(name)?.v, slot.v), `${g} v ${name}`).toBe(true);
      }
    }
    expect(original.store.average?.values.size).toBeGreaterThan(0);
    for (const [name, values] of original.store.average?.values ?? []) expect(sameBytes(restored.store.average?.values.get(name), values), name).toBe(true);
    // The next round hands out the same batches and continues identically.
    expect(restored.plan(2)).toEqual(original.plan(2));
  });

  it('keeps the newest three and falls back past a corrupt or truncated newest one', async () => {
    const run = runAt(0);
    for (let r = 1; r <= 5; r++) {
      run.round = r;
      await writeCheckpoint(out, 'run1', run.snapshot(), training);
    }
    const files = (await readdir(checkpointDir(out))).sort();
    expect(files).toEqual(['ckpt-000000003.gfck', 'ckpt-000000004.gfck', 'ckpt-000000005.gfck']);

    const newest = join(checkpointDir(out), 'ckpt-000000005.gfck');
    const bytes = await readFile(newest);
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] as number) ^ 0xff;
    await writeFile(newest, bytes);
    await expect(readCheckpoint(newest)).rejects.toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
    await truncate(join(checkpointDir(out), 'ckpt-000000004.gfck'), 1000);

    const { log, lines } = memoryLogger();
    const latest = await loadLatestCheckpoint(out, log);
    expect(latest?.snapshot.round).toBe(3);
    expect(lines.filter((l) => l.code === 'CHECKPOINT_CORRUPT').map((l) => l.file)).toEqual(['ckpt-000000005.gfck', 'ckpt-000000004.gfck']);
  });

  it('a checksum-valid checkpoint with a NaN parameter, or without its averaged generator, is refused and the previous one used', async () => {
    const run = runAt(3);
    await writeCheckpoint(out, 'run1', run.snapshot(), training);
    run.round = 4;
    const poisoned = join(checkpointDir(out), 'ckpt-000000004.gfck');
    await writeCheckpoint(out, 'run1', run.snapshot(), training);
    // NaN in the first value of the tensor data, with the checksum made valid again.
    await resign(poisoned, (body, header) => body.writeFloatLE(NaN, 12 + header.length));
    await expect(readCheckpoint(poisoned)).rejects.toMatchObject({ code: 'CHECKPOINT_CORRUPT', message: expect.stringMatching(/NaN/) });
    run.round = 5;
    const incomplete = join(checkpointDir(out), 'ckpt-000000005.gfck');
    await writeCheckpoint(out, 'run1', run.snapshot(), training);
    await resign(incomplete, (body, header) => {
      // Rename the averaged tensors so that the file still parses but lacks the average.
      const text = header.toString('utf8').replaceAll('"average/', '"avg_gone');
      expect(text.length).toBe(header.length);
      body.write(text, 12, 'utf8');
    });
    await expect(readCheckpoint(incomplete)).rejects.toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
    const { log, lines } = memoryLogger();
    expect((await loadLatestCheckpoint(out, log))?.snapshot.round).toBe(3);
    expect(lines.filter((l) => l.code === 'CHECKPOINT_CORRUPT').map((l) => l.file)).toEqual(['ckpt-000000005.gfck', 'ckpt-000000004.gfck']);
  });

  it('never writes a non-finite state', async () => {
    const run = runAt(2);
    (run.store.params.get('d/dense1/kernel') as Float32Array)[7] = Infinity;
    await expect(writeCheckpoint(out, 'run1', run.snapshot(), training)).rejects.toMatchObject({ code: 'NON_FINITE' });
    expect(await readdir(out)).not.toContain('checkpoints');
  });

  it('stored settings cannot reach beyond training: extra keys (token, host, out) are dropped, the training ones kept', async () => {
    const run = runAt(2);
    const crafted = { ...training, emaDecay: 0.99, token: 'attacker', host: '0.0.0.0', out: '/etc', dataDir: '/tmp/x' } as TrainingSettings;
    const ckpt = await readCheckpoint(await writeCheckpoint(out, 'run1', run.snapshot(), crafted));
    expect(ckpt.training).toEqual({ ...training, emaDecay: 0.99 });
    expect(Object.keys(ckpt.training).sort()).toEqual([...TRAINING_SETTINGS].sort());
  });

  it('says so when nothing is usable', async () => {
    const { log } = memoryLogger();
    expect(await loadLatestCheckpoint(out, log)).toBeUndefined();
    await expect(readCheckpoint(join(out, 'missing.gfck'))).rejects.toThrow(/ENOENT/);
  });
});
