import { type ChildProcess, spawn } from 'node:child_process';
import { expect } from 'vitest';
import type { Rng } from '@ganfleet/shared/data';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ganfleetArgv } from 'ganfleet';
import {
  type CoordinatorHandle,
  type CoordinatorOptions,
  type RoundLog,
  type RunEventMap,
  type RunEvents,
  type RunSettings,
  type RunSettingsInput,
  type ServerSettings,
  runSettings,
  serverSettings,
  startCoordinator,
} from '@ganfleet/coordinator';
import { memoryLogger } from '@ganfleet/shared/log';
export { memoryLogger };

/** The integration tests' dataset: 512 MNIST training images (scripts/make-test-data.ts), loaded in milliseconds. */
export const TEST_DATA = fileURLToPath(new URL('../fixtures/mnist-small', import.meta.url));

/** A worker process of the built CLI on the test dataset (on wasm unless told). */
export function spawnWorker(url: string, extra: string[] = [], backend = 'wasm'): ChildProcess {
  return spawn(process.execPath, ganfleetArgv(['worker', '--connect', url, '--backend', backend, '--log-level', 'warn', '--data', TEST_DATA, ...extra]), {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

/** A tree below a coordinator: each entry a worker, or a relay with the tree below it. */
export type Topology = readonly ('worker' | Topology)[];

/** Leaves (workers) of a tree. */
export const leavesOf = (tree: Topology): number => tree.reduce((n: number, t) => n + (t === 'worker' ? 1 : leavesOf(t)), 0);

/**
 * Starts `tree` below `url`: worker processes, and relay processes (each on a free port, or the
 * one `ports` hands out) with their subtrees; every process goes into `spawned`, in start order.
 */
export async function spawnTree(
  url: string,
  tree: Topology,
  spawned: ChildProcess[],
  backend = 'wasm',
  ports: () => Promise<number> = async () => 0,
): Promise<void> {
  for (const node of tree) {
    if (node === 'worker') {
      spawned.push(spawnWorker(url, [], backend));
      continue;
    }
    const relay = spawnRelay(url, await ports());
    spawned.push(relay.child);
    const listening = await waitFor(() => relay.lines.find((l) => l.msg === 'relay listening'), 60_000, 'a relay to listen');
    await spawnTree(`ws://127.0.0.1:${String(listening.port)}`, node, spawned, backend, ports);
  }
}

/** A relay process of the built CLI below `url`, on loopback (`port` 0: any free one). */
export function spawnRelay(url: string, port = 0, extra: string[] = []): { child: ChildProcess; lines: Record<string, unknown>[] } {
  return spawnCli(['relay', '--connect', url, '--host', '127.0.0.1', '--port', String(port), '--log-level', 'info', ...extra]);
}

/** A CLI process whose JSON log lines (stdout) are collected as they come. */
export function spawnCli(args: string[]): { child: ChildProcess; lines: Record<string, unknown>[] } {
  const child = spawn(process.execPath, ganfleetArgv(args), { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: Record<string, unknown>[] = [];
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) if (line.startsWith('{')) lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  return { child, lines };
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** A port that was free a moment ago (for a coordinator that must come back on the same port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Polls until `check` returns a value (not undefined/false) or the time runs out. */
export async function waitFor<T>(check: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A test run's settings: `mlp` on the test dataset unless told, 2 pre-training steps, one D step
 * per G step, lr 2e-4, no sample grids or periodic checkpoints unless told.
 */
export function testRun(
  run: { seed: number; batchSize: number; steps: number; pretrainSteps?: number } & Omit<RunSettingsInput, 'seed' | 'batchSize'>,
): RunSettings {
  const { steps, pretrainSteps, ...rest } = run;
  return runSettings({
    dataDir: TEST_DATA,
    sampleEvery: 0,
    checkpointEvery: 0,
    ...rest,
    schedule: { pretrainSteps: pretrainSteps ?? 2, dStepsPerG: 1, steps, ...rest.schedule },
    adam: { learningRate: 2e-4, ...rest.adam },
  });
}

/** A coordinator on loopback, any free port, closed when training is done, unless told. */
export function loopback(server: Partial<ServerSettings> = {}): ServerSettings {
  return serverSettings({ host: '127.0.0.1', port: 0, exitWhenDone: true, handshakeTimeoutS: 30, ...server });
}

/** The fault tests' run: `mlp` on the test dataset, batch 8, seed 21, `steps` iterations, plus `extra`. */
export const faultRun = (steps: number, extra: Partial<RunSettings> = {}): RunSettings => ({ ...testRun({ seed: 21, batchSize: 8, steps }), ...extra });

/** Coordinator options for a fault test: `run` on loopback, logging to `log`. */
export const faultOptions = (run: RunSettings, log: CoordinatorOptions['log'], server: Partial<ServerSettings> = {}): CoordinatorOptions => ({
  settings: run,
  server: loopback(server),
  log,
});

/** Every event a run announced, in order, with when it came (Date.now()). */
export type EventRecord = { [K in keyof RunEventMap]: { name: K; at: number; data: RunEventMap[K][0] } }[keyof RunEventMap];

export function recordEvents(events: RunEvents): EventRecord[] {
  const seen: EventRecord[] = [];
  const names: (keyof RunEventMap)[] = [
    'round',
    'workerJoined',
    'workerLeft',
    'replyDropped',
    'roundRejected',
    'authFailed',
    'samplesWritten',
    'paused',
    'resumed',
    'finished',
    'evaluated',
  ];
  // Each listener stores its event's payload; the map's types come back through EventRecord.
  const emitter = events as unknown as { on(name: string, listener: (data: unknown) => void): void };
  for (const name of names) emitter.on(name, (data) => seen.push({ name, at: Date.now(), data } as EventRecord));
  return seen;
}

/** The recorded events of one kind. */
export function eventsNamed<K extends keyof RunEventMap>(seen: readonly EventRecord[], name: K): Extract<EventRecord, { name: K }>[] {
  return seen.filter((e): e is Extract<EventRecord, { name: K }> => e.name === name);
}

export interface Cluster {
  coordinator: CoordinatorHandle;
  /** Every round applied so far, in order. */
  rounds: RoundLog[];
  /** Every event so far, in order. */
  events: EventRecord[];
  /** Every worker process started so far, in order. */
  workers: ChildProcess[];
  /** Starts one more worker process. */
  spawn(): ChildProcess;
}

/**
 * A coordinator in this process plus `workers` real worker processes; after `body`, whatever
 * happened, every worker (stopped ones too) is killed and the coordinator closed.
 */
export async function withCluster<T>(options: CoordinatorOptions, workers: number, body: (cluster: Cluster) => Promise<T>): Promise<T> {
  const coordinator = await startCoordinator(options);
  const rounds: RoundLog[] = [];
  coordinator.events.on('round', (r) => rounds.push(r));
  const events = recordEvents(coordinator.events);
  const children: ChildProcess[] = [];
  const spawnOne = (): ChildProcess => {
    const child = spawnWorker(coordinator.url);
    children.push(child);
    return child;
  };
  for (let i = 0; i < workers; i++) spawnOne();
  try {
    return await body({ coordinator, rounds, events, workers: children, spawn: spawnOne });
  } finally {
    for (const child of children) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
    await Promise.all(children.map(exited));
    await coordinator.close();
  }
}

/**
 * One run of the kill -9 fault case: two workers required (rounds wait for both, so the victim is
 * in the run however slowly the processes start), one killed at a random moment of the rounds and
 * replaced; the run must apply each round exactly once and end with finite parameters.
 */
export async function killWorkerMidRun(rng: Rng, settings: RunSettings): Promise<void> {
  const { log, lines } = memoryLogger('info');
  await withCluster({ settings, server: loopback(), log }, 2, async ({ coordinator, rounds, workers, spawn }) => {
    await waitFor(() => rounds.some((r) => r.slots === 2), 60_000, 'a round with both workers');
    // Somewhere in the next ~0.6 s of rounds: before, during or after one of its gradient sends.
    await new Promise((resolve) => setTimeout(resolve, rng.uniform() * 600));
    workers[1]?.kill('SIGKILL');
    spawn();
    const run = await coordinator.done;
    expect(run.round).toBe(run.schedule.totalRounds);
    expect(rounds.map((r) => r.round)).toEqual(Array.from({ length: run.schedule.totalRounds }, (_, i) => i));
    for (const [name, values] of run.store.params) expect(values.every(Number.isFinite), name).toBe(true);
    // The kill landed mid-run and the coordinator noticed it.
    const left = lines.findIndex((l) => l.msg === 'worker left');
    expect(left).toBeGreaterThan(-1);
    expect(left).toBeLessThan(lines.findIndex((l) => l.msg === 'training finished'));
  });
}
