import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { type Logger, createLogger } from '@ganfleet/shared';

/** The built CLI, as a user runs it (integration tests use real processes). */
export const BIN = fileURLToPath(new URL('../../packages/cli/bin/ganfleet.js', import.meta.url));

/** A logger whose JSON lines are kept in memory for assertions. */
export function memoryLogger(level: 'info' | 'debug' | 'warn' = 'info'): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger({ level, destination }), lines };
}

export function spawnWorker(url: string, extra: string[] = []): ChildProcess {
  return spawn(process.execPath, [BIN, 'worker', '--connect', url, '--backend', 'wasm', '--log-level', 'warn', ...extra], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}
