/*
 * One side of `npm run bench -- --only overhead` in a process of its own, so that neither side
 * runs in a heap the other filled: `in-process`, or `distributed` (a coordinator here and one
 * local worker process, its round frames through shared memory) or `socket` (the same with
 * --no-shared-memory: over loopback TCP). Prints the round logs from round SKIP on, and the
 * process's peak RSS, as one JSON line. bench/run.ts starts it:
 *   node --import tsx bench/overheadSide.ts in-process|distributed|socket PRESET BATCH STEPS THREADS BACKEND WIRE_DTYPE
 */
import { type BackendChoice, selectBackend, setNativeThreads } from '@ganfleet/shared/backends';
import { createLogger } from '@ganfleet/shared/log';
import type { WireDtype } from '@ganfleet/shared/wire';
import { type RoundLog, startCoordinator, startInProcess } from '@ganfleet/coordinator';
import { benchRun, benchServer, spawnWorker } from './benchRun.js';
import { peakRssMiB } from './stepTimes.js';

/** Rounds skipped on both sides: process start-up, the first full parameter sync. */
const SKIP = 4;

const [side, preset, batch, steps, threads, backend, wireDtype] = process.argv.slice(2) as [string, string, string, string, string, BackendChoice, WireDtype];
if (side !== 'in-process' && side !== 'distributed' && side !== 'socket')
  throw new Error('usage: overheadSide.ts in-process|distributed|socket PRESET BATCH STEPS THREADS BACKEND WIRE_DTYPE');
await selectBackend(backend);
// The in-process trainer's kernels run on this thread; a worker gets the same count by flag.
setNativeThreads(Number(threads));
const settings = benchRun(preset, Number(batch), Number(steps), wireDtype);
const log = createLogger({ level: 'silent' });
const logs: RoundLog[] = [];
if (side === 'in-process') {
  const inProcess = await startInProcess({ settings, microBatches: 1, log });
  inProcess.events.on('round', (r) => logs.push(r));
  await inProcess.done;
} else {
  const coordinator = await startCoordinator({ settings, server: benchServer(), log });
  coordinator.events.on('round', (r) => logs.push(r));
  const worker = spawnWorker(coordinator.url, backend, Number(threads), side === 'socket' ? ['--no-shared-memory'] : []);
  await coordinator.done;
  worker.kill();
}
process.stdout.write(`${JSON.stringify({ rounds: logs.slice(SKIP), peakRssMiB: peakRssMiB() })}\n`);
