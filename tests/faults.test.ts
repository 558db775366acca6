import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '@ganfleet/shared/backends';
import { eventsNamed, faultOptions, faultRun, memoryLogger, waitFor, withCluster } from './helpers/cluster.js';

/**
 * Worker faults, with real processes on loopback. Every wait is bounded; every process is killed
 * in `finally`. Coordinator faults are in coordinatorFaults.test.ts, kill -9 of workers in
 * workerKill.test.ts and its long soak in tests/soak/.
 */
beforeAll(async () => {
  await selectBackend('wasm');
});
afterAll(async () => {
  await selectBackend('cpu');
});

describe('worker faults', () => {
  it('detects a frozen worker (no FIN) as unresponsive after three silent heartbeats and lets it rejoin when it thaws', async () => {
    const { log } = memoryLogger('warn');
    const heartbeatMs = 300;
    await withCluster(faultOptions(faultRun(100_000, { heartbeatMs }), log), 2, async ({ coordinator, events, workers }) => {
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
    await withCluster(faultOptions(faultRun(100_000, { heartbeatMs }), log), 1, async ({ coordinator, events }) => {
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
    await withCluster(faultOptions(faultRun(100_000, { minWorkers: 2 }), log), 2, async ({ coordinator, events, workers, spawn }) => {
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
    await withCluster(faultOptions(faultRun(100_000, { heartbeatMs: 2000, roundTimeoutS: 1 }), log), 2, async ({ coordinator, rounds, events, workers }) => {
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
