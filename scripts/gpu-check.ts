/*
 * One-shot check of the webgpu backend on a GPU machine, meant to run there as a bundle
 * (scripts/build-gpu-bundle.sh) since that machine has no Node project, only what `.gpu/` carries:
 *   1. selects the backend and records the adapter and device limits;
 *   2. conv model D and G gradients at batch 8 against the cpu backend (relative L2);
 *   3. conv model D and G step times (the worker's Trainer, parameters from initParams, synthetic
 *      images) at each batch size: median ms and samples per second;
 *   4. on webgpu, a profile per kernel (GPU timestamps) of each phase at each --profile-batches
 *      size, with ganfleet's kernels and with tfjs's stock ones, and the stock kernels' step times;
 *   5. a short distributed run: a coordinator here, one worker process (this same script, `worker`
 *      mode) on the backend, MNIST from --data.
 * Every stage is bounded in time and failures are recorded, not fatal; the results are rewritten
 * to <out>/gpu-check.json after each stage, so a run cut short still leaves what it measured.
 *
 * Usage: node .gpu/run.mjs [check] [--backend webgpu] [--data DIR] [--out DIR] [--batches 64,256,1024]
 *          [--reps 10] [--check-batch 8] [--rounds-steps 10] [--dist-batch 64] [--stage-s 45] [--deadline-s 420]
 *          [--profile-batches 64,1024]
 *        node .gpu/run.mjs worker --connect URL --backend B --data DIR   (started by check)
 * Locally: npx tsx scripts/gpu-check.ts --backend cpu --data <IDX dir> --batches 8 --reps 2 (after npx tsc -b packages/cli).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import * as tfjsWebgpu from '@tensorflow/tfjs-backend-webgpu';
import { type Dataset, Rng } from '@ganfleet/shared/data';
import { createLogger } from '@ganfleet/shared/log';
import { getPreset, initParams, Trainer } from '@ganfleet/shared/model';
import type { Phase } from '@ganfleet/shared/wire';
import { type BackendChoice, type Importer, activateWebGpu, selectBackend, useWebGpuKernels, type WebGpuKernelSet } from '@ganfleet/shared/backends';
import { startWorker } from '@ganfleet/worker';
import { type CoordinatorHandle, type RoundLog, runSettings, serverSettings, startCoordinator } from '@ganfleet/coordinator';
import { compareTensors } from '../bench/compare.js';
import { profilePhase } from '../bench/profile.js';

/*
 * In the bundle, this statically bundled copy is the one attached to the bundle's tfjs engine.
 * selectBackend imports '@tensorflow/tfjs-backend-webgpu' by name at run time; there that name
 * resolves to a stand-in the build script writes, which re-exports the copy published here.
 */
(globalThis as unknown as Record<symbol, unknown>)[Symbol.for('ganfleet.bundled.tfjs-backend-webgpu')] = tfjsWebgpu;

const argv = process.argv.slice(2);
const mode = argv[0] === 'worker' || argv[0] === 'check' ? argv.shift() : 'check';
const { values: flags } = parseArgs({
  args: argv,
  strict: true,
  options: Object.fromEntries(
    ['backend', 'connect', 'data', 'out', 'batches', 'profile-batches', 'reps', 'check-batch', 'rounds-steps', 'dist-batch', 'stage-s', 'deadline-s'].map(
      (n) => [n, { type: 'string' }],
    ),
  ) as Record<string, { type: 'string' }>,
});
const flag = (name: string, fallback: string): string => flags[name] ?? fallback;
const num = (name: string, fallback: number): number => {
  const v = Number(flag(name, String(fallback)));
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
};

const backend = flag('backend', 'webgpu') as BackendChoice;
const log = createLogger({ level: 'warn', destination: process.stderr });
const load: Importer = (spec) => import(spec);

if (mode === 'worker') {
  const handle = await startWorker({ url: flag('connect', ''), backend, dataDir: flag('data', ''), log });
  const { rounds } = await handle.done;
  process.stderr.write(`worker finished after ${rounds} rounds\n`);
  process.exit(0);
}

const outDir = resolve(flag('out', process.env.OUT ?? 'gpu-check-out'));
const dataDir = resolve(flag('data', '.gpu/mnist'));
const batches = flag('batches', '64,256,1024').split(',').map(Number);
const profileBatches = flag('profile-batches', '64,1024').split(',').map(Number);
const reps = num('reps', 10);
const checkBatch = num('check-batch', 8);
const roundsSteps = num('rounds-steps', 10);
const distBatch = num('dist-batch', 64);
const stageMs = num('stage-s', 45) * 1000;
const results: Record<string, unknown> = { startedAt: new Date().toISOString(), node: process.version, args: argv };

function save(): void {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'gpu-check.json'), `${JSON.stringify(results, null, 2)}\n`);
}

function finish(code: number): never {
  results.finishedAt = new Date().toISOString();
  save();
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  process.exit(code);
}

// A WebGPU validation error throws from its event listener (see activateWebGpu): record it, then stop.
process.on('uncaughtException', (err) => {
  results.fatal = String(err);
  finish(1);
});
setTimeout(
  () => {
    results.fatal = 'deadline reached';
    finish(2);
  },
  num('deadline-s', 420) * 1000,
).unref();

const round = (x: number, digits = 2): number => Number(x.toFixed(digits));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** Random images in [-1, 1]: timing does not depend on content, and no data files are needed. */
function syntheticDataset(count: number): Dataset {
  const rng = new Rng(11);
  const images = Float32Array.from({ length: count * 28 * 28 }, () => rng.uniform() * 2 - 1);
  return { name: 'synthetic', split: 'train', count, height: 28, width: 28, images, labels: new Uint8Array(count), fingerprint: 'synthetic' };
}

const request = (phase: Phase, batch: number) => ({
  phase,
  batchSize: batch,
  seed: 5,
  ...(phase === 'D' ? { indices: Uint32Array.from({ length: batch }, (_, i) => i) } : {}),
});

async function stage(name: string, fn: () => Promise<unknown>): Promise<void> {
  const started = performance.now();
  try {
    results[name] = await fn();
  } catch (err) {
    results[name] = { error: err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err) };
  }
  process.stderr.write(`${name}: ${round((performance.now() - started) / 1000, 1)} s\n`);
  save();
}

await stage('backend', async () => {
  const info = await selectBackend(backend, (msg, fields) => process.stderr.write(`${msg} ${JSON.stringify(fields)}\n`));
  const device = info.name === 'webgpu' ? await activateWebGpu(load, { allowSoftwareAdapter: true }) : undefined;
  return { ...info, ...(device ? { webgpu: device } : {}) };
});
const active = tf.getBackend();
if (active !== backend && backend !== 'auto') finish(1);

await stage('gradientCheck', async () => {
  const preset = getPreset('conv');
  const dataset = syntheticDataset(checkBatch);
  const params = initParams(preset, 1);
  const out: Record<string, unknown> = { model: preset.name, batch: checkBatch, reference: 'cpu', tolerance: 1e-2 };
  for (const phase of ['D', 'G'] as const) {
    const grads: Map<string, Float32Array>[] = [];
    for (const b of ['cpu', active]) {
      await tf.setBackend(b);
      const trainer = new Trainer(preset, dataset);
      trainer.update(params);
      grads.push((await trainer.compute(request(phase, checkBatch))).grads);
      trainer.dispose();
    }
    const c = compareTensors(grads[0] as Map<string, Float32Array>, grads[1] as Map<string, Float32Array>);
    out[phase] = { ...c, ok: c.relL2 < 1e-2 };
  }
  return out;
});

async function stepTimes(kernelSet: WebGpuKernelSet): Promise<unknown> {
  await tf.setBackend(active);
  if (active === 'webgpu') useWebGpuKernels(kernelSet);
  const preset = getPreset('conv');
  const rows: Record<string, unknown>[] = [];
  for (const batch of batches) {
    const started = performance.now();
    const trainer = new Trainer(preset, syntheticDataset(batch));
    trainer.update(initParams(preset, 1));
    try {
      // The first step of each phase compiles its shaders: reported, not counted.
      const firstD = (await trainer.compute(request('D', batch))).computeMs;
      const firstG = (await trainer.compute(request('G', batch))).computeMs;
      const d: number[] = [];
      const g: number[] = [];
      while (d.length < reps && (d.length === 0 || performance.now() - started < stageMs)) {
        d.push((await trainer.compute(request('D', batch))).computeMs);
        g.push((await trainer.compute(request('G', batch))).computeMs);
      }
      const dMs = median(d);
      const gMs = median(g);
      rows.push({
        batch,
        reps: d.length,
        dStepMs: round(dMs),
        gStepMs: round(gMs),
        dMinMs: round(Math.min(...d)),
        gMinMs: round(Math.min(...g)),
        firstDMs: round(firstD),
        firstGMs: round(firstG),
        samplesPerSec: round((batch * 1000) / (dMs + gMs), 1),
      });
    } catch (err) {
      rows.push({ batch, error: String(err) });
    } finally {
      trainer.dispose();
    }
    process.stderr.write(`  ${kernelSet} batch ${batch}: ${JSON.stringify(rows.at(-1))}\n`);
  }
  if (active === 'webgpu') useWebGpuKernels('ganfleet');
  return {
    model: preset.name,
    backend: active,
    ...(active === 'webgpu' ? { kernelSet } : {}),
    note: 'ms per step include reading the gradients back (await data()), as the worker does',
    rows,
  };
}

await stage('stepTimes', () => stepTimes('ganfleet'));

if (active === 'webgpu') {
  await stage('profile', async () => {
    const preset = getPreset('conv');
    const rows: Record<string, unknown>[] = [];
    for (const kernelSet of ['ganfleet', 'stock'] as const) {
      useWebGpuKernels(kernelSet);
      for (const batch of profileBatches) {
        for (const phase of ['D', 'G'] as const) {
          const p = await profilePhase(preset, syntheticDataset(batch), phase, batch, 2);
          rows.push({
            kernelSet,
            batch,
            phase,
            kernelsPerStep: p.kernelsPerStep,
            dispatchesPerStep: p.dispatchesPerStep,
            kernelMsPerStep: round(p.kernelMsPerStep),
            top: p.kernels.slice(0, 12).map((k) => ({ ...k, ms: round(k.ms, 3), share: round(k.share, 3) })),
          });
          process.stderr.write(
            `  profile ${kernelSet} ${phase} batch ${batch}: ${round(p.kernelMsPerStep)} ms in ${p.kernelsPerStep} kernels, ${p.dispatchesPerStep} dispatches\n`,
          );
        }
      }
    }
    useWebGpuKernels('ganfleet');
    return { model: preset.name, note: "GPU time per kernel from timestamp queries, each kernel timed alone; 0 without 'timestamp-query'", rows };
  });
  await stage('stepTimesStockKernels', () => stepTimes('stock'));
}

await stage('distributed', async () => {
  // The coordinator's own tfjs use (samples, export) is off here; cpu keeps it off the device anyway.
  await tf.setBackend('cpu');
  const batch = distBatch;
  const logs: RoundLog[] = [];
  let workers: { backend: string; device: string }[] = [];
  const coordinator: CoordinatorHandle = await startCoordinator({
    settings: runSettings({
      preset: 'conv',
      batchSize: batch,
      schedule: { pretrainSteps: 2, steps: roundsSteps },
      sampleEvery: 0,
      checkpointEvery: 0,
      dataDir,
    }),
    server: serverSettings({ host: '127.0.0.1', port: 0, exitWhenDone: true, handshakeTimeoutS: 60 }),
    log,
  });
  coordinator.events.on('round', (r) => {
    // The worker's own report (backend, device) while it is still connected.
    if (logs.length === 0) workers = coordinator.status().workers.map(({ backend: b, device }) => ({ backend: b, device }));
    logs.push(r);
  });
  const started = performance.now();
  const args = [...process.execArgv, process.argv[1] as string, 'worker', '--connect', coordinator.url, '--backend', active, '--data', dataDir];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise<string>((res) => child.on('exit', (code, signal) => res(`worker exited (code ${code}, signal ${signal})`)));
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    coordinator.done.then(() => 'done'),
    exited,
    new Promise<string>((res) => (timer = setTimeout(() => res(`timed out after ${stageMs * 3} ms`), stageMs * 3))),
  ]).catch((err: unknown) => `coordinator failed: ${String(err)}`);
  clearTimeout(timer);
  const wallS = (performance.now() - started) / 1000;
  if (child.exitCode === null) child.kill();
  await coordinator.close();
  // The first rounds carry process start-up, the full parameter sync and shader compilation.
  const steady = logs.slice(4);
  const summary = (phase: Phase) => {
    const rs = steady.filter((r) => r.phase === phase);
    return rs.length
      ? {
          rounds: rs.length,
          roundMs: round(median(rs.map((r) => r.roundMs))),
          workerComputeMs: round(median(rs.map((r) => r.computeMs))),
          // The rest of a round: the coordinator's Adam, its broadcast, and the transfers and copies on both sides.
          applyMs: round(median(rs.map((r) => r.applyMs))),
          broadcastMs: round(median(rs.map((r) => r.broadcastMs ?? 0))),
          dataPathMs: round(median(rs.map((r) => r.roundMs - r.computeMs - r.applyMs - (r.broadcastMs ?? 0)))),
        }
      : undefined;
  };
  const totalMs = steady.reduce((a, r) => a + r.roundMs, 0);
  return {
    outcome,
    model: 'conv',
    batch,
    workers,
    rounds: logs.length,
    wallS: round(wallS, 1),
    D: summary('D'),
    G: summary('G'),
    samplesPerSec: steady.length ? round((steady.length * batch * 1000) / totalMs, 1) : undefined,
    losses: logs.map((r) => round(r.loss, 4)),
  };
});

finish(0);
