import type { ChildProcess } from 'node:child_process';
import { readFile, readdir, rm, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '@ganfleet/shared/data';
import { selectBackend } from '@ganfleet/shared/backends';
import { type RunSettings, type ServerSettings, checkpointDir, startCoordinator, trainInProcess } from '@ganfleet/coordinator';
import {
  TEST_DATA,
  eventsNamed,
  exited,
  freePort,
  killWorkerMidRun,
  loopback,
  memoryLogger,
  spawnCli,
  spawnWorker,
  testRun,
  waitFor,
  withCluster,
} from './helpers/cluster.js';

/**
 * Fault injection with real processes on loopback. Every wait is bounded; every process is
 * killed in `finally`. The long kill -9 soak is tests/soak/.
 */
const settings = (steps: number, extra: Partial<RunSettings> = {}): RunSettings => ({ ...testRun({ seed: 21, batchSize: 8, steps }), ...extra });
const options = (run: RunSettings, log: ReturnType<typeof memoryLogger>['log'], server: Partial<ServerSettings> = {}) => ({
  settings: run,
  server: loopback(server),
  log,
});

let dir: string;
beforeAll(async () => {
  await selectBackend('wasm');
  dir = await mkdtemp(join(tmpdir(), 'ganfleet-faults-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await selectBackend('cpu');
});

describe('worker faults', () => {
  it('kill -9 of a worker at random points in 2 runs: every run applies each round exactly once, parameters finite', async () => {
    const rng = new Rng(2026);
    for (let runIndex = 0; runIndex < 2; runIndex++) await killWorkerMidRun(rng, settings(30, { minWorkers: 2 }));
  });

  it('detects a frozen worker (no FIN) as unresponsive after three silent heartbeats and lets it rejoin when it thaws', async () => {
    const { log } = memoryLogger('warn');
    const heartbeatMs = 300;
    await withCluster(options(settings(100_000, { heartbeatMs }), log), 2, async ({ coordinator, events, workers }) => {
      const frozen = workers[1] as ChildProcess;
      await waitFor(() => eventsNamed(events, 'workerJoined').length === 2, 30_000, 'two workers');
      // SIGSTOP: the process and its sockets stay open but nothing answers, like a machine unplugged.
      const stoppedAt = Date.now();
      frozen.kill('SIGSTOP');
      const left = await waitFor(
        () => eventsNamed(events, 'workerLeft').find((e) => e.data.reason === 'unresponsive'),
        30_000,
        'the frozen worker to be dropped',
      );
      // Dropped only after more than three silent intervals since its last pong, which came at most one interval before the stop.
      expect(left.at - stoppedAt).toBeGreaterThanOrEqual(2 * heartbeatMs);
      const roundsBefore = coordinator.run.round;
      await waitFor(() => coordinator.run.round > roundsBefore + 5, 30_000, 'training to go on with the other worker');
      frozen.kill('SIGCONT');
      await waitFor(() => eventsNamed(events, 'workerJoined').length === 3, 30_000, 'the thawed worker to rejoin');
      await waitFor(() => eventsNamed(events, 'round').some((e) => e.at > left.at && e.data.slots === 2), 30_000, 'rounds with both workers again');
    });
  });

  it("does not drop workers for the coordinator's own pause (a blocked event loop)", async () => {
    const { log } = memoryLogger('warn');
    const heartbeatMs = 300;
    await withCluster(options(settings(100_000, { heartbeatMs }), log), 1, async ({ coordinator, events }) => {
      await waitFor(() => coordinator.run.round > 3, 30_000, 'rounds');
      // Like a long evaluation on the coordinator: 5 heartbeat intervals without an event loop.
      const end = Date.now() + 5 * heartbeatMs;
      while (Date.now() < end);
      const before = coordinator.run.round;
      await waitFor(() => coordinator.run.round > before + 5, 30_000, 'rounds after the pause');
      expect(eventsNamed(events, 'workerLeft')).toEqual([]);
    });
  });

  it('pauses below --min-workers, applies no round while paused, and resumes when enough return', async () => {
    const { log } = memoryLogger('warn');
    await withCluster(options(settings(100_000, { minWorkers: 2 }), log), 2, async ({ coordinator, events, workers, spawn }) => {
      await waitFor(() => coordinator.run.round > 3, 30_000, 'rounds with two workers');
      workers[1]?.kill('SIGKILL');
      const paused = await waitFor(() => eventsNamed(events, 'paused').find((e) => e.data.workers === 1), 30_000, 'the pause');
      spawn();
      const resumed = await waitFor(() => eventsNamed(events, 'resumed').find((e) => e.at >= paused.at), 30_000, 'the resume');
      const between = events.slice(events.indexOf(paused), events.indexOf(resumed));
      expect(between.filter((e) => e.name === 'round')).toEqual([]);
      const pausedAt = coordinator.run.round;
      await waitFor(() => coordinator.run.round > pausedAt + 3, 30_000, 'rounds after resuming');
    });
  });

  it('closes a round at --round-timeout without a straggler, which sits out and rejoins once its late reply is dropped', async () => {
    const { log } = memoryLogger('warn');
    await withCluster(options(settings(100_000, { heartbeatMs: 2000, roundTimeoutS: 1 }), log), 2, async ({ coordinator, rounds, events, workers }) => {
      const slow = workers[1] as ChildProcess;
      await waitFor(() => eventsNamed(events, 'workerJoined').length === 2 && coordinator.run.round > 3, 30_000, 'rounds with two workers');
      // Frozen until a round closes without it: longer than the round timeout, shorter than the 6 s heartbeat bound.
      slow.kill('SIGSTOP');
      await waitFor(() => rounds.find((r) => (r.dropped ?? 0) > 0), 30_000, 'a round closed at the timeout');
      slow.kill('SIGCONT');
      const dropped = await waitFor(() => eventsNamed(events, 'replyDropped')[0], 30_000, 'its late reply dropped');
      expect(dropped.data.reason).toBe('late');
      expect(rounds.find((r) => (r.dropped ?? 0) > 0)?.slots).toBe(1);
      await waitFor(() => eventsNamed(events, 'round').some((e) => e.at > dropped.at && e.data.slots === 2), 30_000, 'rounds with both again');
      expect(eventsNamed(events, 'workerLeft')).toEqual([]);
      for (const values of coordinator.run.store.params.values()) expect(values.every(Number.isFinite)).toBe(true);
    });
  });
});

describe('coordinator faults', () => {
  it('resuming from a mid-run checkpoint gives the same parameters as an uninterrupted run', async () => {
    const out = join(dir, 'resume-equal');
    const { log } = memoryLogger('warn');
    const reference = await trainInProcess({ settings: settings(6), microBatches: 1, log });
    const first = await startCoordinator(options(settings(6, { checkpointEvery: 6, out }), log));
    const w1 = spawnWorker(first.url);
    await first.done;
    await exited(w1);
    // Keep only the round-6 checkpoint, as if the coordinator had died right after writing it.
    const files = (await readdir(checkpointDir(out))).sort();
    expect(files[0]).toBe('ckpt-000000006.gfck');
    for (const f of files.slice(1)) await rm(join(checkpointDir(out), f));

    const second = await startCoordinator({ ...options(settings(6), log), resumeFrom: out });
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
