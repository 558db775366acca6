import { InvalidArgumentError, Option } from 'commander';
// The defaults alone: describing the flags must not load TensorFlow.js (a worker never needs it here).
import { EMA_HORIZON, PRESET_NAMES } from '@ganfleet/coordinator/defaults';

/** Flag parsers and the option groups several subcommands share. */

export function int(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}, got "${value}"`);
    return n;
  };
}

export function positive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a positive number, got "${value}"`);
  return n;
}

export function unit(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError(`expected a number in [0, 1), got "${value}"`);
  return n;
}

export function fraction(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError(`expected a number in [0, 1], got "${value}"`);
  return n;
}

/** A number in (0, 1], written as a decimal or as a ratio such as 1/3. */
export function positiveFraction(value: string): number {
  const ratio = /^(\d+)\/(\d+)$/.exec(value.trim());
  const n = ratio ? Number(ratio[1]) / Number(ratio[2]) : Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 1) throw new InvalidArgumentError(`expected a number in (0, 1], got "${value}"`);
  return n;
}

export const BACKENDS = ['auto', 'tensorflow', 'webgpu', 'native', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKENDS)[number];

/** The most threads a native kernel pool takes (the addon's limit). */
export const MAX_THREADS = 256;

/**
 * --threads: the native backend's kernel threads per process (the other backends ignore it).
 * Without a default value the command decides (it shows `defaultDescription`).
 */
export function threadsOption(defaultThreads: number | undefined, defaultDescription: string): Option {
  const what = "threads of the native backend's kernels per worker process (results do not depend on it)";
  return new Option('--threads <n>', defaultThreads === undefined ? `${what}; default: ${defaultDescription}` : what)
    .argParser((value: string) => {
      const n = int(1)(value);
      if (n > MAX_THREADS) throw new InvalidArgumentError(`expected an integer <= ${MAX_THREADS}, got "${value}"`);
      return n;
    })
    .default(defaultThreads, defaultDescription);
}

export const logOptions = (): Option[] => [
  new Option('--log-level <level>', 'pino level').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  new Option('--pretty', 'human-readable logs on stderr instead of JSON lines'),
  new Option('--log-file <path>', 'also append JSON log lines to this file'),
];

/** The shared secret; the environment variable keeps it out of shell history and `ps`. */
export const tokenOption = (): Option => new Option('--token <secret>', 'shared secret for workers, fetch and HTTP').env('GANFLEET_TOKEN');

export const backendOption = (): Option => new Option('--backend <name>', 'compute backend').choices(BACKENDS).default('auto');

/** Model, schedule and optimizer flags: the hyper-parameters of a run. */
export const trainingOptions = (defaults: { model: string; steps: number; evalEvery: number }): Option[] => [
  new Option('--model <preset>', 'model preset').choices(PRESET_NAMES).default(defaults.model),
  new Option('--steps <n>', 'G steps (iterations) after D pre-training').argParser(int(0)).default(defaults.steps),
  new Option('--batch-size <n>', "batch per worker (per micro-batch) (default: the preset's, conv 32, mlp 64)").argParser(int(1)),
  new Option('--pretrain-steps <n>', 'D-only steps before alternating').argParser(int(0)).default(30),
  new Option('--d-steps <k>', 'D steps per G step').argParser(int(1)).default(1),
  new Option('--lr <rate>', "Adam learning rate, both networks (default: the preset's, conv 5e-4, mlp 1e-3)").argParser(positive),
  new Option('--lr-d <rate>', 'Adam learning rate of D alone (default: --lr)').argParser(positive),
  new Option('--lr-g <rate>', 'Adam learning rate of G alone (default: --lr)').argParser(positive),
  new Option(
    '--lr-decay-from <f>',
    "after this fraction of the steps both learning rates fall linearly to 0 (1: constant) (default: the preset's, conv 0.5, mlp 1)",
  ).argParser(fraction),
  new Option('--beta1 <b>', "Adam beta1 (default: the preset's, 0.5)").argParser(unit),
  new Option('--beta2 <b>', 'Adam beta2 (default: 0.999)').argParser(unit),
  new Option('--bn-momentum <m>', 'momentum of the batch-norm inference statistics').argParser(unit).default(0.9),
  new Option(
    '--ema-decay <d>',
    "decay of the averaged generator, the run's product (0: none, the raw generator instead) (default: the preset's, conv 0, mlp 0.9999)",
  ).argParser(unit),
  new Option('--ema-horizon <f>', 'warm-up of the averaged generator: it spans about this fraction of the G updates so far, until --ema-decay caps it')
    .argParser(positiveFraction)
    .default(EMA_HORIZON, '1/2'),
  new Option('--aggregate <mode>', 'how contributions are combined: mean, or coordinate-wise trimmed-mean or median for untrusted fleets')
    .choices(['mean', 'trimmed-mean', 'median'])
    .default('mean'),
  new Option('--trim <k>', 'trimmed-mean: contributions cut at each end of every coordinate').argParser(int(1)).default(1),
  new Option('--outlier-ratio <r>', 'a worker whose gradient norm exceeds this multiple of the recent median is dropped').argParser(positive).default(10),
  new Option('--min-round-timeout <s>', 'floor of the adaptive round deadline (--round-timeout 0)').argParser(positive).default(10),
  new Option('--label-smoothing <s>', "one-sided label smoothing: D aims at 1 - s for real images (default: the preset's, conv 0, mlp 0.1)").argParser(unit),
  new Option('--seed <n>', 'run seed (parameters, noise, data order)').argParser(int(0)).default(1),
  new Option('--sample-every <k>', 'write a sample grid every k steps (0: only at the end)').argParser(int(0)).default(100),
  new Option('--data <dir>', 'MNIST-format IDX directory (default: bundled MNIST)'),
  new Option('--eval-every <k>', 'score the generator every k steps and at the end: FID, modes, IS (0: never)').argParser(int(0)).default(defaults.evalEvery),
  new Option('--eval-samples <n>', 'generated samples per evaluation').argParser(int(100)).default(2000),
  new Option('--eval-parzen', 'evaluations also compute the Parzen log-likelihood (slow)'),
];

export interface TrainingFlags {
  model: string;
  steps: number;
  batchSize?: number;
  pretrainSteps: number;
  dSteps: number;
  lr?: number;
  lrD?: number;
  lrG?: number;
  lrDecayFrom?: number;
  beta1?: number;
  beta2?: number;
  bnMomentum: number;
  emaDecay?: number;
  emaHorizon: number;
  labelSmoothing?: number;
  aggregate: 'mean' | 'trimmed-mean' | 'median';
  trim: number;
  outlierRatio: number;
  minRoundTimeout: number;
  seed: number;
  sampleEvery: number;
  data?: string;
  evalEvery: number;
  evalSamples: number;
  evalParzen?: boolean;
}

export interface LogFlags {
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  pretty?: boolean;
  logFile?: string;
}
