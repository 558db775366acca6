import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '@ganfleet/shared/backends';
import { checkpointDir, startCoordinator, trainInProcess } from '@ganfleet/coordinator';
import { TEST_DATA, exited, faultOptions, faultRun, freePort, memoryLogger, spawnCli, spawnWorker, waitFor } from './helpers/cluster.js';

/**
 * Coordinator faults (checkpoint, resume, kill -9), with real processes on loopback. Every wait
 * is bounded; every process is killed in `finally`.
 */
let dir: string;
beforeAll(async () => {
  await selectBackend('wasm');
  dir = await mkdtemp(join(tmpdir(), 'ganfleet-faults-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await selectBackend('cpu');
});

describe('coordinator faults', () => {
  it('resuming from a mid-run checkpoint gives the same parameters as an uninterrupted run', async () => {
    const out = join(dir, 'resume-equal');
    const { log } = memoryLogger('warn');
    const reference = await trainInProcess({ settings: faultRun(6), microBatches: 1, log });
    const first = await startCoordinator(faultOptions(faultRun(6, { checkpointEvery: 6, out }), log));
    const w1 = spawnWorker(first.url);
    await first.done;
    await exited(w1);
    // Keep only the round-6 checkpoint, as if the coordinator had died right after writing it.
    const files = (await readdir(checkpointDir(out))).sort();
    expect(files[0]).toBe('ckpt-000000006.gfck');
    for (const f of files.slice(1)) await rm(join(checkpointDir(out), f));

    const second = await startCoordinator({ ...faultOptions(faultRun(6), log), resumeFrom: out });
    expect(second.run.round).toBe(6);
    const w2 = spawnWorker(second.url);
    const run = await second.done;
    await exited(w2);
    for (const [name, expected] of reference.store.params) {
      expect(Buffer.from((run.store.params.get(name) as Float32Array).buffer).equals(Buffer.from(expected.buffer)), name).toBe(true);
    }
  });

  it('kill -9 of the coordinator mid-run: restarted with --resume (newest checkpoint corrupt), it falls back and the worker rejoins by itself', async () => {
    const out = join(dir, 'coordinator-kill');
    const port = await freePort();
    const args = [
      'coordinator',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--model',
      'mlp',
      '--data',
      TEST_DATA,
      '--steps',
      '60',
      '--batch-size',
      '8',
      '--min-workers',
      '1',
      '--out',
      out,
    ];
    let coordinator = spawnCli([...args, '--checkpoint-every', '10', '--backend', 'wasm']);
    const worker = spawnWorker(`ws://127.0.0.1:${port}`, ['--give-up-after', '60']);
    try {
      await waitFor(() => coordinator.lines.filter((l) => l.msg === 'checkpoint written').length >= 2, 60_000, 'two checkpoints');
      coordinator.child.kill('SIGKILL');
      await exited(coordinator.child);
      const files = (await readdir(checkpointDir(out))).filter((f) => f.endsWith('.gfck')).sort();
      const newest = join(checkpointDir(out), files.at(-1) as string);
      const bytes = await readFile(newest);
      await writeFile(newest, bytes.subarray(0, bytes.length - 100));

      coordinator = spawnCli([
        'coordinator',
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--data',
        TEST_DATA,
        '--resume',
        out,
        '--exit-when-done',
        '--backend',
        'wasm',
      ]);
      const resumed = await waitFor(() => coordinator.lines.find((l) => l.msg === 'resuming from checkpoint'), 30_000, 'the resume');
      expect(coordinator.lines.some((l) => l.code === 'CHECKPOINT_CORRUPT' && l.file === files.at(-1))).toBe(true);
      expect(resumed.checkpoint).toBe(join(checkpointDir(out), files.at(-2) as string));
      await waitFor(() => coordinator.lines.some((l) => l.msg === 'worker joined'), 30_000, 'the worker to rejoin');
      expect(await exited(coordinator.child)).toBe(0);
      const finished = coordinator.lines.find((l) => l.msg === 'training finished');
      expect(finished?.step).toBe(60);
      expect(await exited(worker)).toBe(0);
    } finally {
      coordinator.child.kill('SIGKILL');
      worker.kill('SIGKILL');
      await Promise.all([exited(coordinator.child), exited(worker)]);
    }
  });
});
