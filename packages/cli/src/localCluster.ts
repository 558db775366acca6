import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import type { Logger } from '@ganfleet/shared/log';
import { type RunEvents, type RunSettings, type TrainingRun, serverSettings, startCoordinator } from '@ganfleet/coordinator';
import { ganfleetArgv } from './nodeFlags.js';

export interface LocalClusterOptions {
  /** The run; its minWorkers is the number of worker processes started. */
  settings: RunSettings;
  localWorkers: number;
  backend: string;
  /** Threads of the native backend's kernels in each worker process (see threadsPerLocalWorker). */
  threads?: number;
  /** Log level of the worker processes (their lines go to this process's stderr). */
  workerLogLevel: string;
  /** Where the workers' output lines go instead of this process's stdout and stderr (the progress bar's log stream). */
  workerOutput?: Writable;
  log: Logger;
}

/**
 * The default threads per local worker process: the cores divided among the processes, at least
 * 1. With the default of one process per core that is 1 thread each, which measured faster than
 * fewer processes with more threads on the 2-vCPU VM for both presets (native backend, 2026-11-29:
 * `mlp` 1787 vs 1504 samples/s, `conv` 339 vs 229, 2 x 1 vs 1 x 2; docs/benchmarks.md).
 */
export function threadsPerLocalWorker(workers: number, cores = availableParallelism()): number {
  return Math.max(1, Math.floor(cores / workers));
}

/**
 * `ganfleet train`: a coordinator on loopback plus N worker processes of this same CLI
 * (wasm is single-threaded in Node, so processes are how the cores get used; the native
 * backend's kernels take threads too, but processes measured faster). The cluster has a
 * fresh random token, handed to its workers in their environment and never printed, so other
 * local users and web pages cannot join or read it.
 */
export async function startLocalCluster(opts: LocalClusterOptions): Promise<{ events: RunEvents; done: Promise<TrainingRun> }> {
  const token = randomBytes(24).toString('base64url');
  const coordinator = await startCoordinator({
    settings: { ...opts.settings, minWorkers: opts.localWorkers },
    server: serverSettings({ host: '127.0.0.1', port: 0, exitWhenDone: true, handshakeTimeoutS: 30, token }),
    log: opts.log,
  });
  const children: ChildProcess[] = [];
  const failed = new Promise<never>((_, reject) => {
    for (let i = 0; i < opts.localWorkers; i++) {
      const args = ['worker', '--connect', coordinator.url, '--backend', opts.backend, '--log-level', opts.workerLogLevel];
      args.push('--threads', String(opts.threads ?? threadsPerLocalWorker(opts.localWorkers)));
      if (opts.settings.dataDir) args.push('--data', opts.settings.dataDir);
      const output = opts.workerOutput;
      const child = spawn(process.execPath, ganfleetArgv(args), {
        stdio: ['ignore', output ? 'pipe' : 'inherit', output ? 'pipe' : 'inherit'],
        env: { ...process.env, GANFLEET_TOKEN: token },
      });
      // Whole lines only, so lines from several workers never interleave mid-line.
      if (output) for (const s of [child.stdout, child.stderr]) if (s) createInterface({ input: s }).on('line', (line) => output.write(`${line}\n`));
      child.on('exit', (code) => {
        if (code !== 0 && code !== null) reject(new Error(`local worker ${i + 1} exited with code ${code}`));
      });
      children.push(child);
    }
  });
  opts.log.info({ workers: opts.localWorkers, url: coordinator.url }, 'local workers started');
  const done = (async () => {
    try {
      return await Promise.race([coordinator.done, failed]);
    } finally {
      for (const c of children) if (c.exitCode === null) c.kill();
      await coordinator.close();
    }
  })();
  return { events: coordinator.events, done };
}
