import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Logger } from '@ganfleet/shared/log';
import { type RunEvents, type RunSettings, type TrainingRun, serverSettings, startCoordinator } from '@ganfleet/coordinator';

const BIN = fileURLToPath(new URL('../bin/ganfleet.js', import.meta.url));

export interface LocalClusterOptions {
  /** The run; its minWorkers is the number of worker processes started. */
  settings: RunSettings;
  localWorkers: number;
  backend: string;
  /** Log level of the worker processes (their lines go to this process's stderr). */
  workerLogLevel: string;
  /** Where the workers' output lines go instead of this process's stdout and stderr (the progress bar's log stream). */
  workerOutput?: Writable;
  log: Logger;
}

/**
 * `ganfleet train`: a coordinator on loopback plus N worker processes of this same CLI
 * (wasm is single-threaded in Node, so processes are how the cores get used). The cluster has a
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
      const args = [BIN, 'worker', '--connect', coordinator.url, '--backend', opts.backend, '--log-level', opts.workerLogLevel];
      if (opts.settings.dataDir) args.push('--data', opts.settings.dataDir);
      const output = opts.workerOutput;
      const child = spawn(process.execPath, args, {
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
