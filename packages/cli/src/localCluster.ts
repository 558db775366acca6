import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Logger } from '@ganfleet/shared';
import { type CoordinatorConfig, type TrainingRun, startCoordinator } from '@ganfleet/coordinator';

const BIN = fileURLToPath(new URL('../bin/ganfleet.js', import.meta.url));

export interface LocalClusterConfig extends Omit<CoordinatorConfig, 'host' | 'port' | 'minWorkers' | 'exitWhenDone' | 'handshakeTimeoutS'> {
  localWorkers: number;
  backend: string;
  /** Log level of the worker processes (their lines go to this process's stderr). */
  workerLogLevel: string;
  /** Where the workers' output lines go instead of this process's stdout and stderr (the progress bar's log stream). */
  workerOutput?: Writable;
}

/**
 * `ganfleet train`: a coordinator on loopback plus N worker processes of this same CLI
 * (wasm is single-threaded in Node, so processes are how the cores get used).
 */
export async function trainLocalCluster(config: LocalClusterConfig): Promise<TrainingRun> {
  const log: Logger = config.log;
  const coordinator = await startCoordinator({
    ...config,
    host: '127.0.0.1',
    port: 0,
    minWorkers: config.localWorkers,
    exitWhenDone: true,
    handshakeTimeoutS: 30,
  });
  const children: ChildProcess[] = [];
  const failed = new Promise<never>((_, reject) => {
    for (let i = 0; i < config.localWorkers; i++) {
      const args = [BIN, 'worker', '--connect', coordinator.url, '--backend', config.backend, '--log-level', config.workerLogLevel];
      if (config.dataDir) args.push('--data', config.dataDir);
      const output = config.workerOutput;
      const child = spawn(process.execPath, args, { stdio: ['ignore', output ? 'pipe' : 'inherit', output ? 'pipe' : 'inherit'] });
      // Whole lines only, so lines from several workers never interleave mid-line.
      if (output) for (const s of [child.stdout, child.stderr]) if (s) createInterface({ input: s }).on('line', (line) => output.write(`${line}\n`));
      child.on('exit', (code) => {
        if (code !== 0 && code !== null) reject(new Error(`local worker ${i + 1} exited with code ${code}`));
      });
      children.push(child);
    }
  });
  log.info({ workers: config.localWorkers, url: coordinator.url }, 'local workers started');
  try {
    return await Promise.race([coordinator.done, failed]);
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill();
    await coordinator.close();
  }
}
