import { fileURLToPath } from 'node:url';

/*
 * The V8 flags every ganfleet process runs with: the bin's shebang, the worker processes that
 * `ganfleet train` starts, and the deploy files (Docker, systemd) all pass exactly these.
 *
 * Why: a round allocates several MB of ArrayBuffers outside V8's heap (socket reads, received
 * frames, gradients read back from the backend). V8 counts them against a heap limit that starts
 * at a few tens of MB, so with its default the coordinator ran a full mark-compact every ~2 rounds,
 * and the workers' compute threads nearly as often. A 128 MB floor makes those collections rare;
 * docs/benchmarks.md has the measurements. These flags cannot go in NODE_OPTIONS (node refuses
 * them there), hence the command lines.
 */
export const NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128'];

const BIN = fileURLToPath(new URL('../bin/ganfleet.js', import.meta.url));

/** node's arguments for `ganfleet ...args` as a user runs it: NODE_FLAGS, the bin, the args (spawn process.execPath with them). */
export function ganfleetArgv(args: readonly string[]): string[] {
  return [...NODE_FLAGS, BIN, ...args];
}

/** The NODE_FLAGS this process was started without (`node bin/ganfleet.js` run by hand, say). */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  return NODE_FLAGS.filter((flag) => !execArgv.includes(flag));
}
