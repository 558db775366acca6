/* The built CLI as the benches start it: the same node flags as `ganfleet train` gives its workers. */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from 'ganfleet';

const BIN = fileURLToPath(new URL('../packages/cli/bin/ganfleet.js', import.meta.url));

export function spawnCli(args: readonly string[], env?: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [...NODE_FLAGS, BIN, ...args], { stdio: 'inherit', ...(env ? { env } : {}) });
}
