/*
 * What one coordinator costs per worker: a run on loopback with N workers, measuring the
 * coordinator's own process (this one; the workers are child processes): CPU per round and per
 * worker per round, bytes per round against the minimum, event-loop delay, minor page faults and
 * GC time per round. `mlp` with real workers (1..32: they share the 2 cores, so samples/s means
 * nothing here), `conv` with fake workers that reply at once with fixed gradients, so that compute
 * does not hide the coordinator's cost.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';
import { createLogger } from '@ganfleet/shared/log';
import { type ModelPreset, countParams, getPreset, specsOf, sizeOf } from '@ganfleet/shared/model';
import type { Phase } from '@ganfleet/shared/wire';
import { NODE_FLAGS } from 'ganfleet';
import { type RoundLog, runSettings, serverSettings, startCoordinator } from '@ganfleet/coordinator';
import { spawnCli } from './cli.js';

const FAKE = fileURLToPath(new URL('./fakeWorker.ts', import.meta.url));
const TOKEN = 'fleet-bench-token';

type Emit = (record: Record<string, unknown>) => void;

/**
 * Minimum float32 traffic of one round for one worker when phases alternate D, G: the
 * parameters the previous round changed go down (the other phase's, plus moving statistics
 * after a G round), this phase's gradients (plus batch-norm statistics in G) come up.
 */
export function minimumBytes(preset: ModelPreset, phase: Phase): number {
  const trainable = (g: Phase) => specsOf(preset, g).reduce((n, s) => n + sizeOf(s.shape), 0);
  const bnStats = countParams(preset, 'G') - trainable('G');
  const down = phase === 'D' ? trainable('G') + bnStats : trainable('D');
  const up = trainable(phase) + (phase === 'G' ? bnStats : 0);
  return 4 * (down + up);
}

/** One run of `steps` steps with `workers` workers (real or fake), and the coordinator's costs per round in steady state. */
export async function fleetRun(emit: Emit, presetName: string, workers: number, steps: number, fake: boolean): Promise<void> {
  const preset = getPreset(presetName);
  const settings = runSettings({
    preset: presetName,
    batchSize: 64,
    schedule: { pretrainSteps: 2, steps },
    sampleEvery: 0,
    checkpointEvery: 0,
    minWorkers: workers,
  });
  const coordinator = await startCoordinator({
    settings,
    server: serverSettings({ host: '127.0.0.1', port: 0, exitWhenDone: true, handshakeTimeoutS: 120, token: TOKEN, maxConnections: 256 }),
    log: createLogger({ level: 'silent' }),
  });
  const rounds: { log: RoundLog; cpuUs: number; faults: number; gcMs: number; at: number }[] = [];
  let gcMs = 0;
  const gc = new PerformanceObserver((list) => list.getEntries().forEach((e) => (gcMs += e.duration)));
  gc.observe({ entryTypes: ['gc'] });
  const delay = monitorEventLoopDelay({ resolution: 10 });
  let last = { cpu: process.cpuUsage(), faults: process.resourceUsage().minorPageFault, gc: 0 };
  coordinator.events.on('round', (log) => {
    const cpu = process.cpuUsage(last.cpu);
    const faults = process.resourceUsage().minorPageFault;
    rounds.push({ log, cpuUs: cpu.user + cpu.system, faults: faults - last.faults, gcMs: gcMs - last.gc, at: performance.now() });
    last = { cpu: process.cpuUsage(), faults, gc: gcMs };
    // Steady state starts once every worker is in: from then on the delay histogram counts.
    if (rounds.length === 4) delay.enable();
  });
  const env = { ...process.env, GANFLEET_TOKEN: TOKEN };
  const children: ChildProcess[] = Array.from({ length: workers }, () =>
    fake
      ? spawn(process.execPath, [...NODE_FLAGS, '--import', 'tsx', FAKE, coordinator.url, TOKEN], { stdio: 'inherit' })
      : spawnCli(['worker', '--connect', coordinator.url, '--backend', 'wasm', '--threads', '1', '--log-level', 'warn'], env),
  );
  const run = await coordinator.done;
  delay.disable();
  gc.disconnect();
  for (const c of children) if (c.exitCode === null) c.kill();
  const steady = rounds.slice(4);
  const lost = run.schedule.totalRounds - rounds.length;
  const perRound = (f: (r: (typeof steady)[number]) => number) => steady.reduce((a, r) => a + f(r), 0) / steady.length;
  const bytes = perRound((r) => (r.log.bytesIn ?? 0) + (r.log.bytesOut ?? 0));
  const minimum = workers * perRound((r) => minimumBytes(preset, r.log.phase));
  const cpuMs = perRound((r) => r.cpuUs / 1000);
  emit({
    bench: 'fleet',
    model: presetName,
    workers: fake ? `${workers} fake` : workers,
    rounds: rounds.length,
    roundsLost: lost,
    wallRoundMs: round(perRound((r) => r.log.roundMs)),
    coordinatorCpuMsPerRound: round(cpuMs),
    coordinatorCpuMsPerWorkerPerRound: round(cpuMs / workers, 2),
    applyMs: round(perRound((r) => r.log.applyMs)),
    bytesPerRound: Math.round(bytes),
    bytesRatio: round(bytes / minimum, 4),
    minorFaultsPerRound: Math.round(perRound((r) => r.faults)),
    gcMsPerRound: round(
      perRound((r) => r.gcMs),
      2,
    ),
    eventLoopDelayP99Ms: round(delay.percentile(99) / 1e6),
    eventLoopDelayMaxMs: round(delay.max / 1e6),
  });
}

export async function fleetBench(emit: Emit, quick: boolean): Promise<void> {
  for (const workers of quick ? [1, 4] : [1, 2, 4, 8, 16, 32]) await fleetRun(emit, 'mlp', workers, quick ? 20 : 60, false);
  for (const workers of quick ? [1, 4] : [1, 2, 4, 8]) await fleetRun(emit, 'conv', workers, quick ? 5 : 20, true);
}

const round = (x: number, digits = 1): number => Number(x.toFixed(digits));
