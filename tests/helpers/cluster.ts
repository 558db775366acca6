import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type CoordinatorConfig, type CoordinatorHandle, DEFAULT_ADAM, startCoordinator } from '@ganfleet/coordinator';
export { memoryLogger } from '@ganfleet/shared';

/** The built CLI, as a user runs it (integration tests use real processes). */
export const BIN = fileURLToPath(new URL('../../packages/cli/bin/ganfleet.js', import.meta.url));

export function spawnWorker(url: string, extra: string[] = []): ChildProcess {
  return spawn(process.execPath, [BIN, 'worker', '--connect', url, '--backend', 'wasm', '--log-level', 'warn', ...extra], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

/** A CLI process whose JSON log lines (stdout) are collected as they come. */
export function spawnCli(args: string[]): { child: ChildProcess; lines: Record<string, unknown>[] } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
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
 * A test run's training settings: `mlp` unless told, 2 pre-training steps unless told, one D step
 * per G step, Adam's defaults, batch-norm momentum 0.9, no sample grids unless told.
 */
export function runSettings(run: { seed: number; batchSize: number; steps: number; preset?: string; pretrainSteps?: number; sampleEvery?: number }) {
  return {
    preset: run.preset ?? 'mlp',
    seed: run.seed,
    batchSize: run.batchSize,
    schedule: { pretrainSteps: run.pretrainSteps ?? 2, dStepsPerG: 1, steps: run.steps },
    adam: DEFAULT_ADAM,
    bnMomentum: 0.9,
    sampleEvery: run.sampleEvery ?? 0,
  };
}

/** Loopback defaults for a coordinator started by a test. */
export const LOOPBACK = { host: '127.0.0.1', port: 0, exitWhenDone: true, handshakeTimeoutS: 30 } as const;

export interface Cluster {
  coordinator: CoordinatorHandle;
  /** Every worker process started so far, in order. */
  workers: ChildProcess[];
  /** Starts one more worker process. */
  spawn(): ChildProcess;
}

/**
 * A coordinator in this process plus `workers` real worker processes; after `body`, whatever
 * happened, every worker (stopped ones too) is killed and the coordinator closed.
 */
export async function withCluster<T>(config: CoordinatorConfig, workers: number, body: (cluster: Cluster) => Promise<T>): Promise<T> {
  const coordinator = await startCoordinator(config);
  const children: ChildProcess[] = [];
  const spawnOne = (): ChildProcess => {
    const child = spawnWorker(coordinator.url);
    children.push(child);
    return child;
  };
  for (let i = 0; i < workers; i++) spawnOne();
  try {
    return await body({ coordinator, workers: children, spawn: spawnOne });
  } finally {
    for (const child of children) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
    await Promise.all(children.map(exited));
    await coordinator.close();
  }
}
