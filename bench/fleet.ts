/*
 * What one coordinator costs per worker: a run on loopback with N workers, measuring the
 * coordinator's own process (this one; the workers are child processes): CPU per round and per
 * worker per round, bytes per round against the minimum, event-loop delay, minor page faults and
 * GC time per round. `mlp` with real workers (1..32: they share the 2 cores, so samples/s means
 * nothing here), `conv` with fake workers that reply at once with fixed gradients, so that compute
 * does not hide the coordinator's cost.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';
import { createLogger } from '@ganfleet/shared/log';
import { type ModelPreset, countParams, getPreset, specsOf, sizeOf } from '@ganfleet/shared/model';
import type { Phase, RelaySums } from '@ganfleet/shared/wire';
import { readFileSync } from 'node:fs';
import { applyMs } from './stepTimes.js';
import { NODE_FLAGS, ganfleetArgv } from 'ganfleet';
import { type RoundLog, runSettings, serverSettings, startCoordinator } from '@ganfleet/coordinator';

/** `taskset` CPU lists: the coordinator's core and its peers' (none: one core, nothing pinned). */
const CORES = availableParallelism();
const PLACEMENT = CORES >= 2 ? { coordinator: '0', peers: `1-${CORES - 1}`, all: `0-${CORES - 1}` } : undefined;

/** Pins every thread of a running process (this one) to `cpus`. */
const pin = (pid: number, cpus: string): void => void execFileSync('taskset', ['-a', '-cp', cpus, String(pid)], { stdio: 'ignore' });

/** A peer process on the peers' cores. */
function spawnPeer(args: readonly string[], env: NodeJS.ProcessEnv, stdout: 'inherit' | 'pipe' = 'inherit'): ChildProcess {
  const [command, argv] = PLACEMENT ? ['taskset', ['-c', PLACEMENT.peers, process.execPath, ...args]] : [process.execPath, args];
  return spawn(command, argv, { stdio: ['ignore', stdout, 'inherit'], env });
}

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

/**
 * One run of `steps` steps with `workers` workers (real or fake), directly connected or split
 * evenly among `relays` relay processes, and the coordinator's (and the relays') costs per round
 * in steady state.
 */
export async function fleetRun(
  emit: Emit,
  presetName: string,
  workers: number,
  steps: number,
  fake: boolean,
  relays = 0,
  relaySums: RelaySums = 'exact',
): Promise<void> {
  const preset = getPreset(presetName);
  const settings = runSettings({
    preset: presetName,
    batchSize: 64,
    schedule: { pretrainSteps: 2, steps },
    sampleEvery: 0,
    checkpointEvery: 0,
    minWorkers: workers,
    // Up to 40 processes start on 2 cores: a worker's first seconds must not cost it its place.
    heartbeatMs: HEARTBEAT_MS,
    relaySums,
  });
  const coordinator = await startCoordinator({
    settings,
    server: serverSettings({ host: '127.0.0.1', port: 0, exitWhenDone: true, handshakeTimeoutS: 120, token: TOKEN, maxConnections: 256 }),
    log: createLogger({ level: (process.env.FLEET_LOG as 'info' | undefined) ?? 'silent' }),
  });
  if (PLACEMENT) pin(process.pid, PLACEMENT.coordinator);
  const rounds: { log: RoundLog; cpuUs: number; faults: number; gcMs: number; at: number; relayTicks: number }[] = [];
  const relayPids: number[] = [];
  let gcMs = 0;
  const gc = new PerformanceObserver((list) => list.getEntries().forEach((e) => (gcMs += e.duration)));
  gc.observe({ entryTypes: ['gc'] });
  const delay = monitorEventLoopDelay({ resolution: 10 });
  let last = { cpu: process.cpuUsage(), faults: process.resourceUsage().minorPageFault, gc: 0 };
  coordinator.events.on('round', (log) => {
    const cpu = process.cpuUsage(last.cpu);
    const faults = process.resourceUsage().minorPageFault;
    rounds.push({
      log,
      cpuUs: cpu.user + cpu.system,
      faults: faults - last.faults,
      gcMs: gcMs - last.gc,
      at: performance.now(),
      relayTicks: cpuTicks(relayPids),
    });
    last = { cpu: process.cpuUsage(), faults, gc: gcMs };
    // Steady state starts once every worker is in: from then on the delay histogram counts.
    if (rounds.length === 4) delay.enable();
  });
  const env = { ...process.env, GANFLEET_TOKEN: TOKEN };
  const children: ChildProcess[] = [];
  // The coordinator's workers stand for workers on other machines: their frames go over the socket
  // (--no-shared-memory), as over a network. A relay's stand for a machine's workers on its loopback,
  // which take the relay's shared memory, as they would there.
  const spawnWorker = (url: string, sharedMemory: boolean): ChildProcess =>
    spawnPeer(
      fake
        ? [...NODE_FLAGS, '--import', 'tsx', FAKE, url, TOKEN]
        : ganfleetArgv([
            'worker',
            '--connect',
            url,
            '--backend',
            'wasm',
            '--threads',
            '1',
            '--log-level',
            'warn',
            ...(sharedMemory ? [] : ['--no-shared-memory']),
          ]),
      env,
    );
  if (relays === 0) for (let i = 0; i < workers; i++) children.push(spawnWorker(coordinator.url, false));
  for (let r = 0; r < relays; r++) {
    const relay = await startRelayProcess(coordinator.url, env);
    children.push(relay.child);
    relayPids.push(relay.child.pid as number);
    for (let i = 0; i < workers / relays; i++) children.push(spawnWorker(relay.url, true));
  }
  const run = await coordinator.done;
  delay.disable();
  gc.disconnect();
  for (const c of children) if (c.exitCode === null) c.kill();
  const idleCpuMsPerS = await idleCpuRate();
  if (PLACEMENT) pin(process.pid, PLACEMENT.all);
  const steady = rounds.slice(4);
  const lost = run.schedule.totalRounds - rounds.length;
  const perRound = (f: (r: (typeof steady)[number]) => number) => steady.reduce((a, r) => a + f(r), 0) / steady.length;
  const bytes = perRound((r) => (r.log.bytesIn ?? 0) + (r.log.bytesOut ?? 0));
  const minimum = workers * perRound((r) => minimumBytes(preset, r.log.phase));
  const cpuMs = perRound((r) => r.cpuUs / 1000);
  const connections = relays || workers;
  const relayCpuMs = steady.length > 1 ? (((steady.at(-1)?.relayTicks ?? 0) - (steady[0]?.relayTicks ?? 0)) * MS_PER_TICK) / (steady.length - 1) : 0;
  emit({
    bench: 'fleet',
    model: presetName,
    workers: fake ? `${workers} fake` : workers,
    ...(relays ? { relays, relaySums, relayCpuMsPerRound: round(relayCpuMs), relayCpuMsPerChildPerRound: round(relayCpuMs / workers, 2) } : {}),
    bytesPerConnectionPerRound: Math.round(bytes / connections),
    rounds: rounds.length,
    roundsLost: lost,
    wallRoundMs: round(perRound((r) => r.log.roundMs)),
    coordinatorCpuMsPerRound: round(cpuMs),
    coordinatorIdleCpuMsPerS: round(idleCpuMsPerS),
    coordinatorCpuMsPerRoundLessIdle: round(cpuMs - (idleCpuMsPerS * perRound((r) => r.log.roundMs)) / 1000),
    coordinatorCpuMsPerWorkerPerRound: round(cpuMs / workers, 2),
    applyMs: round(perRound((r) => applyMs(r.log))),
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

/**
 * This process's CPU per second with no round running, once the run is over and its peers are
 * gone (V8's helper threads, the module loader's, timers): a round that lasts longer (more
 * processes sharing the cores, as with relays) counts more of it, which is not the round's cost.
 */
async function idleCpuRate(settleMs = 2000, windowMs = 5000): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  const start = process.cpuUsage();
  const startedAt = performance.now();
  await new Promise((resolve) => setTimeout(resolve, windowMs));
  const used = process.cpuUsage(start);
  return (used.user + used.system) / (performance.now() - startedAt);
}

export async function fleetBench(emit: Emit, quick: boolean): Promise<void> {
  for (const workers of quick ? [1, 4] : [1, 2, 4, 8, 16, 32]) await fleetRun(emit, 'mlp', workers, quick ? 20 : 60, false);
  for (const workers of quick ? [1, 4] : [1, 2, 4, 8]) await fleetRun(emit, 'conv', workers, quick ? 5 : 20, true);
}

/** Relays against flat: 2 relays × 4 workers (sums exact, and rounded to float32) beside 2 and 8 flat workers, `mlp` real and `conv` fake. */
export async function relayBench(emit: Emit, quick: boolean): Promise<void> {
  for (const [preset, steps, fake] of [
    ['mlp', quick ? 20 : 60, false],
    ['conv', quick ? 5 : 20, true],
  ] as const) {
    await fleetRun(emit, preset, 2, steps, fake);
    await fleetRun(emit, preset, 8, steps, fake);
    await fleetRun(emit, preset, 8, steps, fake, 2);
    await fleetRun(emit, preset, 8, steps, fake, 2, 'float32');
  }
}

/** A relay process of the built CLI on a free loopback port, once it has joined and listens. */
async function startRelayProcess(parent: string, env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const args = ['relay', '--connect', parent, '--host', '127.0.0.1', '--port', '0', '--heartbeat', String(HEARTBEAT_MS), '--log-level', 'info'];
  const child = spawnPeer(ganfleetArgv(args), env, 'pipe');
  const port = await new Promise<number>((resolve, reject) => {
    let partial = '';
    const onData = (chunk: Buffer): void => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const entry = line.startsWith('{') ? (JSON.parse(line) as { msg?: string; port?: number }) : {};
        if (entry.msg === 'relay listening') {
          // Keep draining its log (a round line each round) so that the pipe never fills.
          child.stdout?.off('data', onData).resume();
          resolve(entry.port as number);
        }
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`relay exited with code ${code} before listening`)));
  });
  return { child, url: `ws://127.0.0.1:${port}` };
}

/** User + system CPU of these processes so far, in clock ticks (/proc/PID/stat). */
function cpuTicks(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      // After the command (which may hold spaces, in parentheses): utime and stime are fields 14 and 15.
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // The process has exited: its last reading stands.
    }
  }
  return ticks;
}

const HEARTBEAT_MS = 5000;

/** Linux reports CPU times in ticks of 1/100 s (USER_HZ). */
const MS_PER_TICK = 10;

const round = (x: number, digits = 1): number => Number(x.toFixed(digits));
