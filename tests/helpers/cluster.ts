import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
export { memoryLogger } from '@ganfleet/shared';

/** The built CLI, as a user runs it (integration tests use real processes). */
export const BIN = fileURLToPath(new URL('../../packages/cli/bin/ganfleet.js', import.meta.url));

export function spawnWorker(url: string, extra: string[] = []): ChildProcess {
  return spawn(process.execPath, [BIN, 'worker', '--connect', url, '--backend', 'wasm', '--log-level', 'warn', ...extra], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}
