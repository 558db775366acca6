/* What the distributed benches share: the run they measure, its server, its local worker processes. */
import type { ChildProcess } from 'node:child_process';
import type { WireDtype } from '@ganfleet/shared/wire';
import { type RunSettings, runSettings, serverSettings } from '@ganfleet/coordinator';
import { spawnCli } from './cli.js';

/** 2 pre-training rounds, then `steps` D/G pairs, no outputs. */
export function benchRun(presetName: string, batch: number, steps: number, wireDtype: WireDtype, minWorkers = 1): RunSettings {
  return runSettings({
    preset: presetName,
    batchSize: batch,
    schedule: { pretrainSteps: 2, steps },
    sampleEvery: 0,
    checkpointEvery: 0,
    minWorkers,
    wireDtype,
  });
}

export const benchServer = () => serverSettings({ host: '127.0.0.1', port: 0, exitWhenDone: true, handshakeTimeoutS: 60 });

/** A local worker process with `threads` native kernel threads (what `ganfleet train --local-workers` gives each), and `extra` flags. */
export const spawnWorker = (url: string, backend: string, threads: number, extra: readonly string[] = []): ChildProcess =>
  spawnCli(['worker', '--connect', url, '--backend', backend, '--threads', String(threads), '--log-level', 'warn', ...extra]);
