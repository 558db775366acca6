import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '@ganfleet/shared/backends';
import { type RoundLog, startCoordinator, trainInProcess } from '@ganfleet/coordinator';
import { getPreset, sizeOf, specsOf } from '@ganfleet/shared/model';
import { exited, freePort, loopback, memoryLogger, spawnRelay, spawnTree, spawnWorker, testRun, waitFor } from './helpers/cluster.js';
import { equivalenceRun, expectDistributedEqualsInProcess } from './helpers/equivalence.js';
import { selfSignedCert } from './helpers/tls.js';

/**
 * Relays (ganfleet relay): a tree of them trains the same parameters as the flat run over the same
 * workers, bit for bit, and so as the in-process trainer with as many micro-batches; a relay lost
 * is a lost worker to its parent, and its children come back to it when it comes back.
 */
beforeAll(async () => {
  await selectBackend('wasm');
});
afterAll(async () => {
  await selectBackend('cpu');
});

describe('a tree of relays equals the in-process trainer (and so the flat run) bit for bit', () => {
  it('mlp, depth 1, uneven fan-outs: a relay of three workers, and one worker directly', async () => {
    await expectDistributedEqualsInProcess('mlp', 16, [['worker', 'worker', 'worker'], 'worker'], 'wasm');
  });

  it('mlp, depth 2, uneven fan-outs: relay → (relay of two workers, a worker), and a relay of one worker', async () => {
    await expectDistributedEqualsInProcess('mlp', 16, [[['worker', 'worker'], 'worker'], ['worker']], 'wasm');
  });

  it('conv (batch norm pooled through the tree), depth 1: a relay of two workers, and one worker directly', async () => {
    await expectDistributedEqualsInProcess('conv', 4, [['worker', 'worker'], 'worker'], 'wasm');
  });

  it('conv, depth 2: relay → (relay of one worker, a worker)', async () => {
    await expectDistributedEqualsInProcess('conv', 4, [[['worker'], 'worker']], 'wasm');
  });
});

describe('relays that round their sums (--relay-sums float32)', () => {
  it.each([
    ['mlp', 16],
    ['conv', 4],
  ] as const)(
    '%s, a relay of two workers and one worker directly: the relay sends float32 sums (the bytes of one worker; statistics exact), the parameters stay within float32 roundings of the exact run',
    async (presetName, batchSize) => {
      const settings = { ...equivalenceRun(presetName, batchSize), minWorkers: 3 };
      const { log } = memoryLogger('warn');
      const exact = await trainInProcess({ settings, microBatches: 3, log });
      const coordinator = await startCoordinator({ settings: { ...settings, relaySums: 'float32' }, server: loopback(), log });
      const rounds: RoundLog[] = [];
      coordinator.events.on('round', (r) => rounds.push(r));
      const processes: ChildProcess[] = [];
      try {
        await spawnTree(coordinator.url, [['worker', 'worker'], 'worker'], processes, 'wasm');
        const run = await coordinator.done;
        expect(rounds.map((r) => r.used?.length)).toEqual(rounds.map(() => 3));
        // Two connections of float32 gradients each (exact sums would make the relay's twice a worker's).
        const preset = getPreset(presetName);
        for (const r of rounds) {
          const float32Bytes = specsOf(preset, r.phase).reduce((n, s) => n + 4 * sizeOf(s.shape), 0);
          expect(r.bytesIn, `round ${r.round}`).toBeGreaterThan(2 * float32Bytes);
          expect(r.bytesIn, `round ${r.round}`).toBeLessThan(2.05 * float32Bytes);
        }
        // An Adam step moves a parameter by about the learning rate at most; the roundings move it by a
        // small part of that (measured: mlp 7.3e-7 after 12 rounds, conv 9.8e-6 after 5, where sums that
        // nearly cancel leave Adam's step sensitive), a wrong weighting or a lost sum by the whole of it.
        const { adam } = settings;
        const lr = Math.max(adam.learningRate, ...Object.values(adam.networkLearningRates ?? {}));
        let worst = 0;
        for (const [name, values] of exact.store.params) {
          const got = run.store.params.get(name) as Float32Array;
          for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs((got[i] as number) - (values[i] as number)));
        }
        expect(worst).toBeLessThan(0.05 * rounds.length * lr);
      } finally {
        await coordinator.close();
        for (const p of processes) if (p.exitCode === null) p.kill('SIGKILL');
        await Promise.all(processes.map(exited));
      }
    },
  );
});

describe('relay faults', () => {
  it('depth 2 (coordinator → relay → relay → two workers): the upper relay killed -9 and restarted on its port mid-run; every round applied once, parameters finite', async () => {
    const { log, lines } = memoryLogger('info');
    const coordinator = await startCoordinator({ settings: { ...testRun({ seed: 41, batchSize: 8, steps: 60 }), minWorkers: 2 }, server: loopback(), log });
    const rounds: RoundLog[] = [];
    coordinator.events.on('round', (r) => rounds.push(r));
    const processes: ChildProcess[] = [];
    const port = await freePort();
    try {
      await spawnTree(coordinator.url, [[['worker', 'worker']]], processes, 'wasm', async () => (processes.length === 0 ? port : 0));
      await waitFor(() => rounds.length >= 10, 60_000, 'ten rounds through the tree');
      const upper = processes[0] as ChildProcess;
      upper.kill('SIGKILL');
      await exited(upper);
      const restarted = spawnRelay(coordinator.url, port);
      processes.push(restarted.child);
      const run = await coordinator.done;
      expect(run.round).toBe(run.schedule.totalRounds);
      expect(rounds.map((r) => r.round)).toEqual(Array.from({ length: run.round }, (_, i) => i));
      for (const [name, values] of run.store.params) expect(values.every(Number.isFinite), name).toBe(true);
      // The kill was noticed, and the lower relay (with its workers) came back through the restarted one.
      expect(lines.some((l) => l.msg === 'worker left' && String(l.worker).startsWith('r'))).toBe(true);
      const rejoined = lines.filter((l) => l.msg === 'relay joined').length;
      expect(rejoined).toBe(2);
      expect(rounds.at(-1)?.used?.length).toBe(2);
      expect(restarted.lines.some((l) => l.msg === 'relay joined its parent')).toBe(true);
    } finally {
      await coordinator.close();
      for (const p of processes) if (p.exitCode === null) p.kill('SIGKILL');
      await Promise.all(processes.map(exited));
    }
  });

  it("a worker killed below a relay: the relay re-weights its round, the coordinator's /status shows the relay's tree before and after", async () => {
    const { log } = memoryLogger('warn');
    const coordinator = await startCoordinator({
      settings: { ...testRun({ seed: 47, batchSize: 8, steps: 100_000 }), minWorkers: 1 },
      server: loopback(),
      log,
    });
    const rounds: RoundLog[] = [];
    coordinator.events.on('round', (r) => rounds.push(r));
    const processes: ChildProcess[] = [];
    try {
      await spawnTree(coordinator.url, [['worker', 'worker']], processes, 'wasm');
      await waitFor(() => rounds.length >= 10 && rounds.at(-1)?.used?.length === 2, 60_000, 'ten rounds, the last with both workers');
      const relayOf = () => coordinator.status().workers.find((w) => w.role === 'relay');
      const before = await waitFor(() => relayOf()?.relay && relayOf(), 10_000, 'the relay and its last round in /status');
      expect(before.slots).toBe(2);
      expect(before.children?.map((c) => c.role)).toEqual(['worker', 'worker']);
      expect(before.relay?.bytesIn).toBeGreaterThan(0);
      processes[1]?.kill('SIGKILL');
      const after = rounds.length;
      await waitFor(() => rounds.length >= after + 10 && rounds.at(-1)?.used?.length === 1, 60_000, 'ten more rounds, with the one worker left');
      expect(relayOf()?.slots).toBe(1);
      expect(relayOf()?.children).toHaveLength(1);
      expect(rounds.map((r) => r.round)).toEqual(Array.from({ length: rounds.length }, (_, i) => i));
      for (const values of coordinator.run.store.params.values()) expect(values.every(Number.isFinite)).toBe(true);
    } finally {
      await coordinator.close();
      for (const p of processes) if (p.exitCode === null) p.kill('SIGKILL');
      await Promise.all(processes.map(exited));
    }
  });

  it('a relay that hangs (SIGSTOP) is dropped by its parent (heartbeat or deadline, with a code); the run goes on with the other worker', async () => {
    const { log, lines } = memoryLogger('info');
    const settings = { ...testRun({ seed: 42, batchSize: 8, steps: 100_000 }), minWorkers: 1, minRoundTimeoutS: 1 };
    const coordinator = await startCoordinator({ settings, server: loopback(), log });
    const rounds: RoundLog[] = [];
    coordinator.events.on('round', (r) => rounds.push(r));
    const processes: ChildProcess[] = [spawnWorker(coordinator.url)];
    try {
      await spawnTree(coordinator.url, [['worker']], processes, 'wasm');
      await waitFor(() => rounds.length >= 10 && (rounds.at(-1)?.used?.length ?? 0) === 2, 60_000, 'ten rounds, the last with both leaves');
      const relay = processes[1] as ChildProcess;
      relay.kill('SIGSTOP');
      const dropped = await waitFor(() => lines.find((l) => l.msg === 'worker left' && String(l.worker).startsWith('r')), 30_000, 'the relay to be dropped');
      expect(lines.some((l) => (l.code === 'STRAGGLER' || l.code === 'WORKER_LOST') && l.worker === dropped.worker)).toBe(true);
      const after = rounds.length;
      await waitFor(() => rounds.length >= after + 10, 30_000, 'ten more rounds without the relay');
      expect(rounds.slice(after).every((r) => r.used?.length === 1)).toBe(true);
      for (const values of coordinator.run.store.params.values()) expect(values.every(Number.isFinite)).toBe(true);
    } finally {
      await coordinator.close();
      for (const p of processes) {
        p.kill('SIGCONT');
        p.kill('SIGKILL');
      }
      await Promise.all(processes.map(exited));
    }
  });
});

describe('relay security', () => {
  it('the token on both sides: the relay presents it to its parent and demands it of its workers', async () => {
    const { log } = memoryLogger('warn');
    const token = 'relay-test-token-0123456789';
    const coordinator = await startCoordinator({
      settings: { ...testRun({ seed: 43, batchSize: 8, steps: 3 }), minWorkers: 1 },
      server: loopback({ token }),
      log,
    });
    const relay = spawnRelay(coordinator.url, 0, ['--token', token]);
    const processes: ChildProcess[] = [relay.child];
    try {
      const listening = await waitFor(() => relay.lines.find((l) => l.msg === 'relay listening'), 60_000, 'the relay to listen');
      const url = `ws://127.0.0.1:${String(listening.port)}`;
      // Without the token the relay refuses the upgrade; the worker gives up (exit code 1).
      const stranger = spawnWorker(url, ['--give-up-after', '1']);
      processes.push(stranger);
      expect(await exited(stranger)).toBe(1);
      expect(relay.lines.some((l) => l.code === 'UNAUTHORIZED')).toBe(true);
      const member = spawnWorker(url, ['--token', token]);
      processes.push(member);
      const run = await coordinator.done;
      expect(run.round).toBe(run.schedule.totalRounds);
      expect(await exited(member)).toBe(0);
    } finally {
      await coordinator.close();
      for (const p of processes) if (p.exitCode === null) p.kill('SIGKILL');
      await Promise.all(processes.map(exited));
    }
  });

  it('TLS on both sides: a relay trusting its parent with --ca, serving wss:// to its worker with --tls-cert/--tls-key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ganfleet-relay-tls-'));
    const processes: ChildProcess[] = [];
    const { log } = memoryLogger('warn');
    try {
      const { cert, key } = selfSignedCert(dir);
      const tls = { cert: await readFile(cert), key: await readFile(key) };
      const coordinator = await startCoordinator({
        settings: { ...testRun({ seed: 46, batchSize: 8, steps: 3 }), minWorkers: 1 },
        server: loopback({ tls }),
        log,
      });
      try {
        expect(coordinator.url).toMatch(/^wss:/);
        const relay = spawnRelay(coordinator.url, 0, ['--ca', cert, '--tls-cert', cert, '--tls-key', key]);
        processes.push(relay.child);
        const listening = await waitFor(() => relay.lines.find((l) => l.msg === 'relay listening'), 60_000, 'the relay to listen');
        expect(listening.tls).toBe(true);
        const worker = spawnWorker(`wss://127.0.0.1:${String(listening.port)}`, ['--ca', cert]);
        processes.push(worker);
        const run = await coordinator.done;
        expect(run.round).toBe(run.schedule.totalRounds);
        expect(await exited(worker)).toBe(0);
      } finally {
        await coordinator.close();
      }
    } finally {
      for (const p of processes) if (p.exitCode === null) p.kill('SIGKILL');
      await Promise.all(processes.map(exited));
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a relay without the token is refused by its parent with UNAUTHORIZED and exits', async () => {
    const { log } = memoryLogger('warn');
    const coordinator = await startCoordinator({
      settings: { ...testRun({ seed: 44, batchSize: 8, steps: 3 }) },
      server: loopback({ token: 'another-token-0123456789' }),
      log,
    });
    const relay = spawnRelay(coordinator.url);
    try {
      expect(await exited(relay.child)).toBe(1);
    } finally {
      relay.child.kill('SIGKILL');
      await coordinator.close();
    }
  });

  it('a coordinator with --aggregate median refuses relays (they send sums, not each worker’s gradients)', async () => {
    const { log, lines } = memoryLogger('warn');
    const coordinator = await startCoordinator({
      settings: { ...testRun({ seed: 45, batchSize: 8, steps: 3 }), aggregate: 'median' },
      server: loopback(),
      log,
    });
    const relay = spawnRelay(coordinator.url);
    try {
      expect(await exited(relay.child)).toBe(1);
      expect(lines.some((l) => l.code === 'CONFIG_INVALID')).toBe(true);
    } finally {
      relay.child.kill('SIGKILL');
      await coordinator.close();
    }
  });
});
