/* The built CLI as the benches start it: the same node flags as `ganfleet train` gives its workers. */
import { type ChildProcess, spawn } from 'node:child_process';
import { ganfleetArgv } from 'ganfleet';

export function spawnCli(args: readonly string[], env?: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, ganfleetArgv(args), { stdio: 'inherit', ...(env ? { env } : {}) });
}
