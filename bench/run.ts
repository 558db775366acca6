/*
 * `npm run bench`: the performance record, one JSON line per measurement on stdout.
 * Targets (issues): seed/wasm batch 64 D <= 800 ms, G <= 1000 ms; mlp <= 40 ms per step;
 * distributed (1 worker) >= 0.90 of in-process throughput on seed; bytes per round <= 1.05x the
 * minimum; coordinator apply <= 5 % of a round on seed; codec >= 2 GB/s.
 * Flags: --quick (fewer repetitions and sizes), --only step|profile|apply|overhead|scaling|codec|fleet|relays|native (native: bench/native.ts), --backend NAME,
 * --webgpu-kernels stock (tfjs's own kernels instead of ganfleet's, to compare), --wire-dtype float16
 * (parameters and gradients as float16 on the wire in the overhead and scaling benches),
 * --workers N --steps S (with --only fleet: one mlp run of that size instead of the series),
 * --repeat N (with --only overhead: N sets of in-process and distributed runs, the order alternating).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { decodeTensors, encodeFrame, encodeTensors, parseWorkerMessage, WIRE_DTYPES, type WireDtype } from '@ganfleet/shared/wire';
import { type Dataset, loadDataset } from '@ganfleet/shared/data';
import { createLogger } from '@ganfleet/shared/log';
import { type ModelPreset, getPreset, initParams, specsOf, Trainer } from '@ganfleet/shared/model';
import { type BackendChoice, selectBackend, useWebGpuKernels, type WebGpuKernelSet } from '@ganfleet/shared/backends';
import { type RoundLog, startCoordinator } from '@ganfleet/coordinator';
import { applyBench } from './apply.js';
import { NODE_FLAGS, threadsPerLocalWorker } from 'ganfleet';
import { benchRun, benchServer, spawnWorker } from './benchRun.js';
import { fleetBench, fleetRun, minimumBytes, relayBench } from './fleet.js';
import { compareTensors } from './compare.js';
import { nativeBench } from './native.js';
import { profilePhase } from './profile.js';
import { applyMs, mean, median, medianStepTimes, peakRssMiB } from './stepTimes.js';

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    backend: { type: 'string', default: 'wasm' },
    'webgpu-kernels': { type: 'string', default: 'ganfleet' },
    'wire-dtype': { type: 'string', default: 'float32' },
    // --only fleet: one run of this many mlp workers and steps instead of the series.
    workers: { type: 'string' },
    steps: { type: 'string' },
    // --only overhead: sets of runs (in-process, distributed through shared memory, over the socket), the order alternating.
    repeat: { type: 'string', default: '1' },
  },
});
const quick = flags.quick;
const only = flags.only;
const backendArg = flags.backend as BackendChoice;
const kernelSet = flags['webgpu-kernels'] as WebGpuKernelSet;
const wireDtype = flags['wire-dtype'] as WireDtype;
if (!WIRE_DTYPES.includes(wireDtype)) throw new Error(`--wire-dtype must be one of ${WIRE_DTYPES.join(', ')}`);

const emit = (record: Record<string, unknown>): void =>
  void process.stdout.write(`${JSON.stringify({ ...record, node: process.version, at: new Date().toISOString() })}\n`);

async function stepTimes(backend: string, preset: ModelPreset, dataset: Dataset, batch: number, reps: number): Promise<void> {
  const trainer = new Trainer(preset, dataset);
  trainer.update(initParams(preset, 1));
  const { d: dMs, g: gMs } = await medianStepTimes(trainer, batch, reps, 1);
  trainer.dispose();
  emit({
    bench: 'step',
    backend,
    ...(backend === 'webgpu' ? { kernelSet } : {}),
    model: preset.name,
    batch,
    dStepMs: round(dMs),
    gStepMs: round(gMs),
    samplesPerSec: round((batch * 1000) / (dMs + gMs)),
    peakRssMiB: peakRssMiB(),
  });
}

const SIDE = fileURLToPath(new URL('./overheadSide.ts', import.meta.url));

type OverheadSide = 'in-process' | 'distributed' | 'socket';

/** One side of the overhead bench (see overheadSide.ts): its round logs from the fifth on, and its peak RSS. */
async function overheadSide(
  side: OverheadSide,
  presetName: string,
  batch: number,
  steps: number,
  threads: number,
): Promise<{ rounds: RoundLog[]; peakRssMiB: number }> {
  const args = [side, presetName, String(batch), String(steps), String(threads), backendArg, wireDtype];
  const child = spawn(process.execPath, [...NODE_FLAGS, '--import', 'tsx', SIDE, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  const last = out.trim().split('\n').pop() ?? '';
  if (code !== 0 || !last.startsWith('{')) throw new Error(`overhead bench: the ${side} side exited with ${code}`);
  return JSON.parse(last) as { rounds: RoundLog[]; peakRssMiB: number };
}

/**
 * Same rounds in-process and through a coordinator with one local worker process (its frames
 * through shared memory, and over the socket), `repeat` times, the order alternating (this VM's
 * runs differ by ±20 %, so one set says little): one record per set, then the median of the sets'
 * ratios. Each side runs in a fresh process and computes with the machine's cores, as
 * `ganfleet train --in-process` and a lone `ganfleet worker` do by default.
 */
async function overhead(presetName: string, batch: number, steps: number, repeat: number): Promise<void> {
  const preset = getPreset(presetName);
  const threads = availableParallelism();
  const ratios: number[] = [];
  const socketRatios: number[] = [];
  for (let pair = 0; pair < repeat; pair++) {
    const inFirst = pair % 2 === 0;
    const order: OverheadSide[] = inFirst ? ['in-process', 'distributed', 'socket'] : ['socket', 'distributed', 'in-process'];
    const runs = new Map<OverheadSide, Awaited<ReturnType<typeof overheadSide>>>();
    for (const side of order) runs.set(side, await overheadSide(side, presetName, batch, steps, threads));
    const side = (s: OverheadSide) => runs.get(s) as Awaited<ReturnType<typeof overheadSide>>;
    const [inProcess, distributed, socket] = [side('in-process'), side('distributed'), side('socket')];
    const local = inProcess.rounds;
    const steady = distributed.rounds;
    const inMs = mean(local.map((r) => r.roundMs));
    const distMs = mean(steady.map((r) => r.roundMs));
    const socketMs = mean(socket.rounds.map((r) => r.roundMs));
    ratios.push(inMs / distMs);
    socketRatios.push(inMs / socketMs);
    const bytes = steady.reduce((a, r) => a + (r.bytesIn ?? 0) + (r.bytesOut ?? 0), 0);
    const minimum = steady.reduce((a, r) => a + minimumBytes(preset, r.phase), 0);
    emit({
      bench: 'distributed-overhead',
      backend: backendArg,
      wireDtype,
      model: presetName,
      batch,
      workers: 1,
      threads,
      ...(repeat > 1 ? { set: pair + 1, order: order.join(', ') } : {}),
      inProcessRoundMs: round(inMs),
      distributedRoundMs: round(distMs),
      throughputRatio: round(inMs / distMs, 3),
      // Replies that came through shared memory (one per round when it is in use).
      viaSharedMemory: round(mean(steady.map((r) => r.viaSharedMemory ?? 0)), 3),
      socketRoundMs: round(socketMs),
      socketThroughputRatio: round(inMs / socketMs, 3),
      bytesPerRound: Math.round(bytes / steady.length),
      minimumBytesPerRound: Math.round(minimum / steady.length),
      bytesRatio: round(bytes / minimum, 4),
      // Medians of both runs' parts: the worker's own compute, the coordinator's apply (combining, then Adam).
      computeMs: { inProcess: round(median(local.map((r) => r.computeMs))), distributed: round(median(steady.map((r) => r.computeMs))) },
      applyMs: { inProcess: round(median(local.map(applyMs))), distributed: round(median(steady.map(applyMs))) },
      applyShareOfRound: round(median(steady.map((r) => applyMs(r) / r.roundMs)), 4),
      peakRssMiB: { inProcess: inProcess.peakRssMiB, distributed: distributed.peakRssMiB },
    });
  }
  if (repeat > 1) {
    emit({
      bench: 'distributed-overhead-summary',
      backend: backendArg,
      wireDtype,
      model: presetName,
      pairs: repeat,
      medianThroughputRatio: round(median(ratios), 3),
      minThroughputRatio: round(Math.min(...ratios), 3),
      maxThroughputRatio: round(Math.max(...ratios), 3),
      medianSocketThroughputRatio: round(median(socketRatios), 3),
    });
  }
}

/** Encode + decode of conv's D gradients in `dtype`; GB/s of the float32 values either way. */
function codec(reps: number, dtype: WireDtype): void {
  const preset = getPreset('conv');
  const params = initParams(preset, 1);
  const tensors = specsOf(preset, 'D').map((s) => ({ name: s.name, shape: s.shape, values: params.get(s.name) as Float32Array }));
  const floats = tensors.reduce((n, t) => n + t.values.length, 0);
  // One outgoing buffer reused across repetitions, as the worker reuses its own: the first
  // repetition touches fresh memory (cold), the rest are the steady state. Decoding reads the
  // received frame in place (float32) or converts (float16).
  let out: Uint8Array = new Uint8Array(0);
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const frame = encodeFrame({ type: 'gradients', round: 0, phase: 'D', samples: 64, loss: 1, computeMs: 0 }, { grads: tensors }, dtype, out);
    out = frame.byteLength > out.byteLength ? frame : out;
    const encodeMs = performance.now() - t0;
    const t1 = performance.now();
    const parsed = parseWorkerMessage(Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength));
    if (parsed.type === 'gradients') decodeTensors(parsed.grads);
    times.push(encodeMs + (performance.now() - t1));
  }
  const gb = (ms: number): number => round((floats * 4) / (ms * 1e6), 3);
  const cold = times[0] as number;
  const ms = median(times.length > 1 ? times.slice(1) : times);
  emit({
    bench: 'codec',
    wireDtype: dtype,
    floats,
    bytes: floats * 4,
    encodeDecodeMs: round(ms),
    gbPerSec: gb(ms),
    coldMs: round(cold),
    coldGbPerSec: gb(cold),
  });
}

/** Samples per second of a coordinator with N local worker processes (each batch `batch`). */
async function scaling(presetName: string, batch: number, steps: number, workers: number): Promise<void> {
  const logs: RoundLog[] = [];
  const silent = createLogger({ level: 'silent' });
  const coordinator = await startCoordinator({ settings: benchRun(presetName, batch, steps, wireDtype, workers), server: benchServer(), log: silent });
  coordinator.events.on('round', (r) => logs.push(r));
  const children = Array.from({ length: workers }, () => spawnWorker(coordinator.url, backendArg, threadsPerLocalWorker(workers)));
  await coordinator.done;
  for (const c of children) c.kill();
  const steady = logs.slice(4);
  const ms = steady.reduce((a, r) => a + r.roundMs, 0);
  emit({
    bench: 'scaling',
    backend: backendArg,
    wireDtype,
    model: presetName,
    batchPerWorker: batch,
    workers,
    threadsPerWorker: threadsPerLocalWorker(workers),
    roundMs: round(ms / steady.length),
    samplesPerSec: round((steady.reduce((a, r) => a + r.samples, 0) * 1000) / ms),
    cores: availableParallelism(),
  });
}

const round = (x: number, digits = 1): number => Number(x.toFixed(digits));

/** One line per model, phase and batch: dispatches per step and the ten heaviest kernels. */
async function profile(backend: string, preset: ModelPreset, dataset: Dataset, batch: number, reps: number): Promise<void> {
  for (const phase of ['D', 'G'] as const) {
    const p = await profilePhase(preset, dataset, phase, batch, reps);
    emit({
      bench: 'profile',
      backend,
      ...(backend === 'webgpu' ? { kernelSet } : {}),
      model: p.model,
      phase,
      batch,
      kernelsPerStep: p.kernelsPerStep,
      dispatchesPerStep: p.dispatchesPerStep,
      kernelMsPerStep: round(p.kernelMsPerStep),
      top: p.kernels.slice(0, 10).map((k) => ({ kernel: k.kernel, calls: k.calls, ms: round(k.ms, 2), share: round(k.share, 3) })),
    });
  }
}

/**
 * What float16 on the wire does to a step's gradients: conv's D and G gradients (batch 64, from
 * initialisation) after a float16 round trip, as relative L2 error, and the share of nonzero
 * values that became 0 (float16 has no values below 2^-25 and only coarse ones below 2^-14).
 */
async function float16Gradients(dataset: Dataset): Promise<void> {
  const preset = getPreset('conv');
  const batch = 64;
  const indices = Uint32Array.from({ length: batch }, (_, i) => i);
  const trainer = new Trainer(preset, dataset);
  trainer.update(initParams(preset, 1));
  try {
    for (const phase of ['D', 'G'] as const) {
      const { grads } = await trainer.compute({ phase, batchSize: batch, seed: 1, ...(phase === 'D' ? { indices } : {}) });
      const tensors = [...grads].map(([name, values]) => ({ name, shape: [values.length], values }));
      const back = new Map(decodeTensors(encodeTensors(tensors, 'float16')).map((t) => [t.name, t.values]));
      let nonzero = 0;
      let zeroed = 0;
      for (const [name, values] of grads) {
        const got = back.get(name) as Float32Array;
        values.forEach((v, i) => {
          if (v === 0) return;
          nonzero++;
          if (got[i] === 0) zeroed++;
        });
      }
      emit({
        bench: 'float16-gradients',
        model: preset.name,
        phase,
        batch,
        relL2: Number(compareTensors(grads, back).relL2.toExponential(2)),
        zeroedShare: Number((zeroed / nonzero).toExponential(2)),
      });
    }
  } finally {
    trainer.dispose();
  }
}

async function main(): Promise<void> {
  if (only === 'native') return nativeBench({ quick });
  const info = await selectBackend(backendArg);
  if (info.name === 'webgpu' && kernelSet === 'stock') useWebGpuKernels('stock');
  const dataset = await loadDataset({ split: 'train' });
  if (!only || only === 'codec') {
    for (const dtype of WIRE_DTYPES) codec(quick ? 5 : 20, dtype);
    await float16Gradients(dataset);
  }
  if (!only || only === 'step') {
    for (const batch of quick ? [64] : [32, 64, 128, 256]) await stepTimes(info.name, getPreset('mlp'), dataset, batch, quick ? 5 : 20);
    for (const batch of quick ? [64] : [32, 64, 128]) await stepTimes(info.name, getPreset('conv'), dataset, batch, quick ? 2 : 5);
  }
  if (!only || only === 'profile') {
    for (const name of ['mlp', 'conv']) await profile(info.name, getPreset(name), dataset, 64, quick ? 1 : 3);
  }
  if (!only || only === 'apply') await applyBench(emit, quick ? 3 : 10);
  if (!only || only === 'relays') await relayBench(emit, quick);
  if (!only || only === 'fleet') {
    if (flags.workers) await fleetRun(emit, 'mlp', Number(flags.workers), Number(flags.steps ?? 60), false);
    else await fleetBench(emit, quick);
  }
  if (!only || only === 'overhead') {
    const repeat = Number(flags.repeat);
    if (!Number.isInteger(repeat) || repeat < 1) throw new Error('--repeat must be a positive integer');
    await overhead('mlp', 64, quick ? 20 : 100, repeat);
    await overhead('conv', 64, quick ? 4 : 10, repeat);
  }
  if (!only || only === 'scaling') {
    for (const workers of [1, 2, 4]) await scaling('mlp', 64, quick ? 20 : 100, workers);
    for (const workers of [1, 2, 4]) await scaling('conv', 64, quick ? 3 : 6, workers);
  }
}

await main();
