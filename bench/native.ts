/**
 * The native backend's bench (issue 17): `npm run bench -- --only native [--quick]`, or directly
 * `npx tsx bench/native.ts [--quick] [--sections kernels,macs,step] [--rounds N] [--python PATH]`.
 * One JSON line per measurement on stdout, like bench/run.ts:
 * - machine: the CPU (/proc/cpuinfo: model, family, nominal clock), the load average before and
 *   after, and the peak GFLOP/s per core that the kernel rows are a percentage of;
 * - kernels: the addon's GEMM and convolution kernels on the conv model's shapes, GFLOP/s with 1
 *   and 2 threads (packages/shared/native/bench.mjs, best of its repetitions);
 * - macs: the multiply-adds of a `conv` D and G step (batch 64) per layer and formulation:
 *   executed, and how many of them multiply zeros inserted by a transposed convolution's stride;
 * - step: `conv` and `mlp` D and G steps at batch 64 on native (1 and 2 threads) and wasm, and
 *   PyTorch's (bench/reference/seed_model.py, 1 and 2 threads) for `conv`, all interleaved round
 *   by round in one sitting; each figure is the best of the rounds' medians (the VM is shared:
 *   rows say `noisy` when the load average exceeded 1.5 at either end, see NOISY_LOAD);
 * - cluster: samples/s of a coordinator with local worker processes (what `ganfleet train` runs)
 *   on native as 2 processes x 1 thread and 1 process x 2 threads, and wasm with 2 processes,
 *   for `mlp` and `conv` at batch 64 per worker, interleaved; best of the repetitions.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type BackendChoice, probeNativeAddon, selectBackend, setNativeThreads } from '@ganfleet/shared/backends';
import { type Dataset, loadDataset } from '@ganfleet/shared/data';
import { createLogger } from '@ganfleet/shared/log';
import { type RoundLog, runSettings, serverSettings, startCoordinator } from '@ganfleet/coordinator';
import { type ModelPreset, Trainer, getPreset, initParams } from '@ganfleet/shared/model';
import { type Layer, convStepLayers, countMacs } from './convMacs.js';
import { medianStepTimes } from './stepTimes.js';
import { spawnCli } from './cli.js';

export type NativeSection = 'kernels' | 'macs' | 'step' | 'cluster';
export const NATIVE_SECTIONS: readonly NativeSection[] = ['kernels', 'macs', 'step', 'cluster'];

export interface NativeBenchOptions {
  quick: boolean;
  sections?: readonly NativeSection[];
  /** Interleaved rounds of the step section. */
  rounds?: number;
  /** A python3 with torch for the PyTorch rows (default /usr/bin/python3; skipped, saying why, without torch). */
  python?: string;
}

const ADDON_BENCH = fileURLToPath(new URL('../packages/shared/native/bench.mjs', import.meta.url));
const SEED_MODEL = fileURLToPath(new URL('./reference/seed_model.py', import.meta.url));
const BATCH = 64;

const emit = (record: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify({ ...record, at: new Date().toISOString() })}\n`);
/**
 * A row is `noisy` when the 1-minute load average exceeded this at either end of its section: the
 * bench itself accounts for about 1 on the 2-vCPU VM, other jobs for the rest.
 */
const NOISY_LOAD = 1.5;
const round = (x: number, digits = 1): number => Number(x.toFixed(digits));

function cpuInfo(): { model?: string; family?: number; nominalMHz?: number; avx512: boolean } {
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    const field = (name: string): string | undefined => new RegExp(`^${name}\\s*: (.*)$`, 'm').exec(text)?.[1];
    return { model: field('model name'), family: Number(field('cpu family')), nominalMHz: Number(field('cpu MHz')), avx512: / avx512f /.test(text) };
  } catch {
    return { avx512: false };
  }
}

/** The addon's own bench (one JSON document), re-emitted as one line per kernel, shape and thread count. */
function kernels(quick: boolean): void {
  const r = spawnSync(process.execPath, [ADDON_BENCH, '--threads=1,2', `--reps=${quick ? 5 : 9}`, `--isa=${bestIsa()}`], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) {
    emit({ bench: 'native-kernels', skipped: `bench.mjs failed: ${(r.stderr || r.stdout).split('\n')[0]}` });
    return;
  }
  const doc = JSON.parse(r.stdout) as {
    peak: { how: string; gflopsPerCore: Record<string, number> };
    load: { before: number; after: number };
    results: Record<string, unknown>[];
  };
  emit({ bench: 'native-peak', how: doc.peak.how, gflopsPerCore: doc.peak.gflopsPerCore, load: doc.load });
  for (const row of doc.results) emit({ bench: 'native-kernel', ...row, noisy: Math.max(doc.load.before, doc.load.after) > NOISY_LOAD });
}

let isaCache: string | undefined;
function bestIsa(): string {
  if (isaCache) return isaCache;
  const r = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import * as n from ${JSON.stringify(new URL('../packages/shared/native/index.js', import.meta.url).href)}; console.log(n.isa());`,
    ],
    {
      encoding: 'utf8',
    },
  );
  isaCache = r.stdout.trim() || 'portable';
  return isaCache;
}

/** Multiply-adds of a conv D and G step, per layer and in total, for each transposed-conv formulation. */
function macs(): void {
  for (const phase of ['D', 'G'] as const) {
    const layers: Layer[] = convStepLayers(phase, BATCH);
    const total = { zeroInsertion: 0, subPixel: 0, insertedZeros: 0, useful: 0 };
    for (const layer of layers) {
      const m = countMacs(layer);
      total.zeroInsertion += m.zeroInsertion;
      total.subPixel += m.subPixel;
      total.insertedZeros += m.insertedZeros;
      total.useful += m.useful;
      emit({ bench: 'conv-macs', phase, batch: BATCH, layer: layer.name, op: layer.op, ...m });
    }
    emit({
      bench: 'conv-macs-total',
      phase,
      batch: BATCH,
      ...total,
      insertedZeroShareBefore: round(total.insertedZeros / total.zeroInsertion, 3),
      subPixelOverZeroInsertion: round(total.subPixel / total.zeroInsertion, 3),
    });
  }
}

interface StepConfig {
  label: string;
  backend: BackendChoice;
  threads: number;
}

interface StepTimes {
  d: number[];
  g: number[];
}

/** Median D and G step times of `reps` steps each (after 2 warm-up pairs) on a fresh trainer. */
async function stepRound(config: StepConfig, preset: ModelPreset, dataset: Dataset, reps: number): Promise<{ d: number; g: number }> {
  setNativeThreads(config.threads);
  await selectBackend(config.backend);
  const trainer = new Trainer(preset, dataset);
  try {
    trainer.update(initParams(preset, 1));
    return await medianStepTimes(trainer, BATCH, reps, 2);
  } finally {
    trainer.dispose();
  }
}

const PYTORCH_THREADS = `
import runpy, sys, torch
threads = int(sys.argv[1])
torch.set_num_threads(threads)
torch.set_num_threads = lambda _n: None  # seed_model.py sets 2 on a CPU; keep ours
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
`;

/** One PyTorch measurement (its script's medians of `reps`, gradients copied out as ganfleet's are), or why there is none. */
function pytorchRound(python: string, threads: number, reps: number): { d: number; g: number; torch: string } | { skipped: string } {
  const out = mkdtempSync(join(tmpdir(), 'ganfleet-pytorch-'));
  try {
    const r = spawnSync(
      python,
      ['-c', PYTORCH_THREADS, String(threads), SEED_MODEL, '--batches', String(BATCH), '--reps', String(reps), '--step-s', '60', '--out', out],
      {
        encoding: 'utf8',
        env: { ...process.env, OMP_NUM_THREADS: String(threads) },
      },
    );
    if (r.error || r.status !== 0) return { skipped: `${python} ${SEED_MODEL}: ${(r.error?.message ?? r.stderr).trim().split('\n').at(-1)}` };
    const result = JSON.parse(readFileSync(join(out, 'pytorch.json'), 'utf8')) as {
      torch: string;
      rows: { dWithDownloadMs: number; gWithDownloadMs: number }[];
    };
    const row = result.rows[0];
    if (!row) return { skipped: 'seed_model.py wrote no row' };
    return { d: row.dWithDownloadMs, g: row.gWithDownloadMs, torch: result.torch };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** conv and mlp steps on native (1 and 2 threads) and wasm, and PyTorch on conv, interleaved round by round. */
async function steps(opts: NativeBenchOptions): Promise<void> {
  const dataset = await loadDataset({ split: 'train' });
  const native = await probeNativeAddon();
  const configs: StepConfig[] = [
    ...(native.available
      ? [
          { label: 'native 1 thread', backend: 'native' as const, threads: 1 },
          { label: 'native 2 threads', backend: 'native' as const, threads: 2 },
        ]
      : []),
    { label: 'wasm', backend: 'wasm', threads: 1 },
  ];
  if (!native.available) emit({ bench: 'native-step', skipped: `native: ${native.why}` });
  const rounds = opts.rounds ?? (opts.quick ? 2 : 5);
  const reps = opts.quick ? 3 : 5;
  const python = opts.python ?? '/usr/bin/python3';
  const loadBefore = loadavg()[0] as number;
  for (const model of ['conv', 'mlp']) {
    const preset = getPreset(model);
    const times = new Map<string, StepTimes>(configs.map((c) => [c.label, { d: [], g: [] }]));
    const torchTimes = new Map<number, StepTimes>();
    let torchVersion = '';
    let torchSkipped: string | undefined;
    for (let r = 0; r < rounds; r++) {
      for (const config of configs) {
        const t = await stepRound(config, preset, dataset, model === 'mlp' ? 4 * reps : reps);
        times.get(config.label)?.d.push(t.d);
        times.get(config.label)?.g.push(t.g);
      }
      if (model !== 'conv' || torchSkipped) continue;
      for (const threads of [1, 2]) {
        const t = pytorchRound(python, threads, reps);
        if ('skipped' in t) {
          torchSkipped = t.skipped;
          break;
        }
        torchVersion = t.torch;
        const entry = torchTimes.get(threads) ?? { d: [], g: [] };
        entry.d.push(t.d);
        entry.g.push(t.g);
        torchTimes.set(threads, entry);
      }
    }
    const loadAfter = loadavg()[0] as number;
    const noisy = Math.max(loadBefore, loadAfter) > NOISY_LOAD;
    const summary = (t: StepTimes) => {
      const d = Math.min(...t.d);
      const g = Math.min(...t.g);
      return {
        dStepMs: round(d),
        gStepMs: round(g),
        samplesPerSec: round((BATCH * 1000) / (d + g)),
        roundMediansD: t.d.map((v) => round(v)),
        roundMediansG: t.g.map((v) => round(v)),
      };
    };
    const load = { before: round(loadBefore, 2), after: round(loadAfter, 2) };
    for (const config of configs) {
      emit({
        bench: 'native-step',
        model,
        batch: BATCH,
        config: config.label,
        backend: config.backend,
        threads: config.threads,
        rounds,
        ...summary(times.get(config.label) as StepTimes),
        load,
        noisy,
      });
    }
    if (model !== 'conv') continue;
    if (torchSkipped) {
      emit({ bench: 'pytorch-step', skipped: torchSkipped });
      continue;
    }
    for (const [threads, t] of torchTimes)
      emit({ bench: 'pytorch-step', model, batch: BATCH, torch: torchVersion, threads, rounds, ...summary(t), load, noisy });
    const best = (t: StepTimes | undefined): number => (t ? (BATCH * 1000) / (Math.min(...t.d) + Math.min(...t.g)) : NaN);
    const torch1 = best(torchTimes.get(1));
    for (const config of configs) {
      emit({
        bench: 'native-vs-pytorch',
        model,
        batch: BATCH,
        config: config.label,
        ratioToPytorch1Thread: round(best(times.get(config.label)) / torch1, 3),
        noisy,
      });
    }
  }
}

interface ClusterConfig {
  backend: 'native' | 'wasm';
  workers: number;
  threads: number;
}

/** Samples/s of the steady rounds (5th on) of a run with `config.workers` local worker processes. */
async function clusterRun(model: string, config: ClusterConfig, steps: number): Promise<number> {
  const settings = runSettings({
    preset: model,
    batchSize: BATCH,
    schedule: { pretrainSteps: 2, steps },
    sampleEvery: 0,
    checkpointEvery: 0,
    minWorkers: config.workers,
    // The outlier screen (default 10x the phase's recent median gradient norm) drops every worker
    // of a `conv` run at its 14th round, where D's gradient norm has grown ~12x since the start, and
    // the run then waits forever (2026-11-29); a throughput bench measures with it off.
    outlierRatio: 1e9,
  });
  const server = serverSettings({ host: '127.0.0.1', port: 0, exitWhenDone: true, handshakeTimeoutS: 60 });
  const coordinator = await startCoordinator({ settings, server, log: createLogger({ level: 'silent' }) });
  const logs: RoundLog[] = [];
  coordinator.events.on('round', (r) => logs.push(r));
  const args = ['worker', '--connect', coordinator.url, '--backend', config.backend, '--threads', String(config.threads), '--log-level', 'warn'];
  const children = Array.from({ length: config.workers }, () => spawnCli(args));
  try {
    await coordinator.done;
  } finally {
    for (const c of children) c.kill();
    await coordinator.close();
  }
  const steady = logs.slice(4);
  return (steady.reduce((a, r) => a + r.samples, 0) * 1000) / steady.reduce((a, r) => a + r.roundMs, 0);
}

/** Local clusters: processes x threads on native, and wasm's processes, interleaved. */
async function cluster(opts: NativeBenchOptions): Promise<void> {
  const native = await probeNativeAddon();
  const configs: ClusterConfig[] = [
    ...(native.available
      ? [
          { backend: 'native' as const, workers: 2, threads: 1 },
          { backend: 'native' as const, workers: 1, threads: 2 },
        ]
      : []),
    { backend: 'wasm', workers: 2, threads: 1 },
  ];
  const repeats = opts.quick ? 1 : 2;
  const loadBefore = loadavg()[0] as number;
  for (const model of ['mlp', 'conv']) {
    const steps = model === 'mlp' ? (opts.quick ? 20 : 60) : opts.quick ? 4 : 8;
    const results = new Map<ClusterConfig, number[]>(configs.map((c) => [c, []]));
    for (let r = 0; r < repeats; r++) for (const config of configs) results.get(config)?.push(await clusterRun(model, config, steps));
    const noisy = Math.max(loadBefore, loadavg()[0] as number) > NOISY_LOAD;
    for (const [config, runs] of results) {
      emit({
        bench: 'native-cluster',
        model,
        batchPerWorker: BATCH,
        ...config,
        steps,
        samplesPerSec: round(Math.max(...runs)),
        runs: runs.map((v) => round(v)),
        noisy,
      });
    }
  }
}

/** Runs the sections in order (kernels, macs, step, cluster). */
export async function nativeBench(opts: NativeBenchOptions): Promise<void> {
  const sections = opts.sections ?? NATIVE_SECTIONS;
  const cpu = cpuInfo();
  emit({ bench: 'native-machine', cpu, cores: availableParallelism(), load: loadavg().map((v) => round(v, 2)), node: process.version });
  if (sections.includes('kernels')) {
    const probe = await probeNativeAddon();
    if (probe.available) kernels(opts.quick);
    else emit({ bench: 'native-kernels', skipped: probe.why });
  }
  if (sections.includes('macs')) macs();
  if (sections.includes('step')) await steps(opts);
  if (sections.includes('cluster')) await cluster(opts);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      sections: { type: 'string', default: NATIVE_SECTIONS.join(',') },
      rounds: { type: 'string' },
      python: { type: 'string' },
    },
  });
  const sections = (values.sections ?? '').split(',') as NativeSection[];
  const unknown = sections.filter((s) => !NATIVE_SECTIONS.includes(s));
  if (unknown.length > 0) throw new Error(`--sections: unknown ${unknown.join(', ')} (known: ${NATIVE_SECTIONS.join(', ')})`);
  await nativeBench({
    quick: values.quick ?? false,
    sections,
    ...(values.rounds ? { rounds: Number(values.rounds) } : {}),
    ...(values.python ? { python: values.python } : {}),
  });
}
