import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '@ganfleet/shared/backends';
import { type CoordinatorHandle, type RoundLog, type RunSettings, startCoordinator } from '@ganfleet/coordinator';
import { sameBytes } from './helpers/bytes.js';
import { exited, loopback, memoryLogger, spawnWorker, testRun, waitFor } from './helpers/cluster.js';
import { replay } from './helpers/replay.js';
import { ScriptedWorker, filledGradients, filledSums } from './helpers/scriptedWorker.js';

/**
 * A worker that lies or hangs among honest ones (real worker processes): training goes on, the
 * liar is dropped with a coded reason, and the parameters are exactly what the honest workers'
 * contributions alone give (recomputed in-process by replay()).
 */
beforeAll(async () => {
  await selectBackend('wasm');
});
afterAll(async () => {
  await selectBackend('cpu');
});

interface Attack {
  coordinator: CoordinatorHandle;
  rounds: RoundLog[];
  lines: Record<string, unknown>[];
}

/** A coordinator for `settings`, two honest worker processes, and whatever `attack` does meanwhile. */
async function withHonestPair(settings: RunSettings, attack: (a: Attack) => Promise<void>): Promise<void> {
  const { log, lines } = memoryLogger('info');
  const coordinator = await startCoordinator({ settings, server: loopback(), log });
  const rounds: RoundLog[] = [];
  coordinator.events.on('round', (r) => rounds.push(r));
  const honest = [spawnWorker(coordinator.url), spawnWorker(coordinator.url)];
  try {
    await attack({ coordinator, rounds, lines });
  } finally {
    await coordinator.close();
    for (const w of honest) if (w.exitCode === null) w.kill('SIGKILL');
    await Promise.all(honest.map(exited));
  }
}

async function expectHonestResult(settings: RunSettings, coordinator: CoordinatorHandle, rounds: RoundLog[]): Promise<void> {
  const run = await coordinator.done;
  expect(run.round).toBe(run.schedule.totalRounds);
  expect(rounds.map((r) => r.round)).toEqual(Array.from({ length: run.round }, (_, i) => i));
  for (const values of run.store.params.values()) expect(values.every(Number.isFinite)).toBe(true);
  const reference = await replay(settings, rounds);
  for (const [name, values] of reference.store.params) expect(sameBytes(run.store.params.get(name), values), name).toBe(true);
}

describe('a dishonest or hung worker among honest ones', () => {
  it('1e37 gradients (finite: no NaN check catches them) are refused as OUT_OF_RANGE before any arithmetic; the run equals the honest slots alone', async () => {
    // The attacker is first in the run: rounds wait for two workers, so it is in the first round.
    const settings = { ...testRun({ seed: 31, batchSize: 8, steps: 6 }), minWorkers: 2 };
    const { log, lines } = memoryLogger('info');
    const coordinator = await startCoordinator({ settings, server: loopback(), log });
    const rounds: RoundLog[] = [];
    coordinator.events.on('round', (r) => rounds.push(r));
    const attacker = new ScriptedWorker(coordinator.url, (round) => filledGradients('mlp', round, 1e37));
    await waitFor(() => coordinator.status().workers.length === 1, 30_000, 'the attacker to join');
    const honest = [spawnWorker(coordinator.url), spawnWorker(coordinator.url)];
    try {
      const closed = await attacker.closed;
      expect(closed.code).toBe(1008);
      expect(closed.reason).toMatch(/^OUT_OF_RANGE/);
      expect(lines.some((l) => l.code === 'OUT_OF_RANGE')).toBe(true);
      await expectHonestResult(settings, coordinator, rounds);
      // The attacker had a slot in a round that was applied without it.
      expect(rounds.some((r) => (r.planned ?? 0) > (r.used?.length ?? 0))).toBe(true);
    } finally {
      await coordinator.close();
      for (const w of honest) if (w.exitCode === null) w.kill('SIGKILL');
      await Promise.all(honest.map(exited));
    }
  });

  it('1e4 gradients (in range, 10^5 times the honest norm) mid-run are refused as OUTLIER; the run equals the honest slots alone', async () => {
    const settings = { ...testRun({ seed: 32, batchSize: 8, steps: 40 }), minWorkers: 2 };
    await withHonestPair(settings, async ({ coordinator, rounds, lines }) => {
      await waitFor(() => rounds.length >= 10, 60_000, 'ten honest rounds (the screen has a history)');
      const attacker = new ScriptedWorker(coordinator.url, (round) => filledGradients('mlp', round, 1e4));
      const closed = await attacker.closed;
      expect(closed.reason).toMatch(/^OUTLIER/);
      expect(lines.some((l) => l.code === 'OUTLIER')).toBe(true);
      expect(rounds.reduce((n, r) => n + (r.refused ?? 0), 0)).toBe(1);
      await expectHonestResult(settings, coordinator, rounds);
    });
  });

  it('a joined worker that answers pings but never its round costs one deadline, sits out, and is dropped as a STRAGGLER', async () => {
    // The adaptive deadline with a 1 s floor: 10x the median round, at least 1 s.
    const settings = { ...testRun({ seed: 33, batchSize: 8, steps: 100_000 }), minWorkers: 2, minRoundTimeoutS: 1 };
    await withHonestPair(settings, async ({ coordinator, rounds, lines }) => {
      await waitFor(() => rounds.length >= 10, 60_000, 'ten honest rounds');
      const joinedAt = rounds.length;
      const hung = new ScriptedWorker(coordinator.url, () => undefined);
      const late = await waitFor(() => rounds.find((r) => r.round >= joinedAt && (r.dropped ?? 0) > 0), 30_000, 'a round closed at the deadline');
      // One deadline lost (at least the 1 s floor), and no more: the next rounds go on without it.
      expect(late.roundMs).toBeGreaterThanOrEqual(1000);
      await waitFor(() => rounds.length >= late.round + 10, 30_000, 'ten more rounds');
      expect(rounds.filter((r) => r.round > late.round).every((r) => (r.dropped ?? 0) === 0)).toBe(true);
      expect(coordinator.status().workers.find((w) => w.backend === 'scripted')?.status).toBe('late');
      // Three deadlines later it is gone.
      expect((await hung.closed).reason).toMatch(/^STRAGGLER/);
      expect(lines.some((l) => l.code === 'STRAGGLER')).toBe(true);
      for (const values of coordinator.run.store.params.values()) expect(values.every(Number.isFinite)).toBe(true);
    });
  });

  it('a relay whose sums are beyond its samples times the gradient bound is refused as OUT_OF_RANGE; the run equals the honest slots alone', async () => {
    const settings = { ...testRun({ seed: 34, batchSize: 8, steps: 20 }), minWorkers: 2 };
    await withHonestPair(settings, async ({ coordinator, rounds, lines }) => {
      await waitFor(() => rounds.length >= 4, 60_000, 'four honest rounds');
      const attacker = new ScriptedWorker(coordinator.url, (round) => filledSums('mlp', round, 1e16), {}, 'relay');
      const closed = await attacker.closed;
      expect(closed.reason).toMatch(/^OUT_OF_RANGE: sums of/);
      expect(lines.some((l) => l.code === 'OUT_OF_RANGE')).toBe(true);
      await expectHonestResult(settings, coordinator, rounds);
    });
  });

  it('a relay that rounds its sums to float32 in a run that keeps them exact is refused as BAD_TENSOR; the run equals the honest slots alone', async () => {
    const settings = { ...testRun({ seed: 36, batchSize: 8, steps: 20 }), minWorkers: 2 };
    await withHonestPair(settings, async ({ coordinator, rounds }) => {
      await waitFor(() => rounds.length >= 4, 60_000, 'four honest rounds');
      const attacker = new ScriptedWorker(coordinator.url, (round) => filledSums('mlp', round, 0.01, [], 'float32'), {}, 'relay');
      expect((await attacker.closed).reason).toMatch(/^BAD_TENSOR: tensor "[^"]+": sums travel as float64, got float32/);
      await expectHonestResult(settings, coordinator, rounds);
    });
  });

  it('a relay whose rest points outside the tensors is refused as BAD_MESSAGE; the run equals the honest slots alone', async () => {
    const settings = { ...testRun({ seed: 35, batchSize: 8, steps: 20 }), minWorkers: 2 };
    await withHonestPair(settings, async ({ coordinator, rounds }) => {
      await waitFor(() => rounds.length >= 4, 60_000, 'four honest rounds');
      const attacker = new ScriptedWorker(coordinator.url, (round) => filledSums('mlp', round, 0.01, [[0, 1e9, 1e-20]]), {}, 'relay');
      expect((await attacker.closed).reason).toMatch(/^BAD_MESSAGE: sums: rest entry \[0, 1000000000\] is outside the tensors/);
      await expectHonestResult(settings, coordinator, rounds);
    });
  });
});
