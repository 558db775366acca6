import type { RelaySums, WireDtype } from '@ganfleet/shared/wire';
import { getPreset } from '@ganfleet/shared/model';
import type { AdamConfig } from './adam.js';
import type { Aggregation } from './aggregation.js';
import type { ScheduleConfig } from './schedule.js';
import { DEFAULT_PRESET, EMA_HORIZON, TRAIN_STEPS } from './defaults.js';

/** When and how the run scores its generator during training. */
export interface EvalSettings {
  /** Every this many steps and at the end; 0: never. */
  every: number;
  /** Generator samples per evaluation. */
  samples: number;
  /** Also the Parzen-window log-likelihood (slow). */
  parzen: boolean;
}

/**
 * Everything that defines a training run, wherever its gradients are computed: what the CLI's
 * flags, the tests and the bench build (with runSettings) and what the coordinator and the
 * in-process trainer run. The network edge (bind address, TLS, token, limits) is ServerSettings.
 */
export interface RunSettings {
  preset: string;
  /** Parameters, noise and data order. */
  seed: number;
  /** Per slot: per worker, or per in-process micro-batch. */
  batchSize: number;
  schedule: ScheduleConfig;
  adam: AdamConfig;
  /** Momentum of the raw generator's batch-norm inference statistics. */
  bnMomentum: number;
  /** Decay of the averaged generator, the run's product (0: none; the raw generator instead). */
  emaDecay: number;
  /**
   * The averaged generator's warm-up: the average spans about this fraction of the G updates so
   * far (decay min(emaDecay, (1 + t) / (1 + 1/h + t)) at the t-th update), until emaDecay caps it.
   */
  emaHorizon: number;
  /** One-sided label smoothing: D's target for real images is 1 - this. */
  labelSmoothing: number;
  /** How a round's contributions are combined (see aggregation.ts for what each mode guarantees). */
  aggregate: Aggregation;
  /** `trimmed-mean`: contributions cut at each end of every coordinate. */
  trim: number;
  /** MNIST-format IDX directory; absent: the bundled MNIST. */
  dataDir?: string;
  /** Output directory (samples, generator, checkpoints); absent: write nothing. */
  out?: string;
  /** Sample grid every this many steps (0: only at the end). */
  sampleEvery: number;
  /** Checkpoint every this many rounds (0: only at the end and on stop). */
  checkpointEvery: number;
  eval: EvalSettings;
  /** Distributed runs: rounds wait until this many workers are connected. */
  minWorkers: number;
  /**
   * Distributed runs: close a round this many seconds after it was sent, over the replies that
   * arrived; a worker that missed it sits the round out (a straggler). 0: adaptive, ten times the
   * median of the phase's recent rounds, at least minRoundTimeoutS.
   */
  roundTimeoutS: number;
  /** Distributed runs: the adaptive deadline's floor, in seconds. */
  minRoundTimeoutS: number;
  /** Distributed runs: a worker whose gradient norm exceeds this multiple of the recent median is dropped as an outlier. */
  outlierRatio: number;
  /** Distributed runs: ping interval; a worker silent for 3 intervals is dropped. */
  heartbeatMs: number;
  /** Distributed runs: encoding of parameters and gradients on the wire. */
  wireDtype: WireDtype;
  /** Distributed runs: how relays send their children's gradient sums up (see RunDescriptor.relaySums). */
  relaySums: RelaySums;
}

/** The settings a checkpoint stores and a resumed run keeps: those that define the training itself. */
export const TRAINING_SETTINGS = [
  'preset',
  'seed',
  'batchSize',
  'schedule',
  'adam',
  'bnMomentum',
  'emaDecay',
  'emaHorizon',
  'labelSmoothing',
  'aggregate',
  'trim',
] as const;

export type TrainingSettings = Pick<RunSettings, (typeof TRAINING_SETTINGS)[number]>;

/**
 * The training settings stored in a checkpoint, and nothing else: a checkpoint, however crafted,
 * can set what a resumed run trains (missing ones default), never where it writes, whom it lets in
 * or how it listens. Throws on a setting of the wrong type.
 */
export function storedTrainingSettings(stored: unknown): TrainingSettings {
  if (typeof stored !== 'object' || stored === null) throw new Error('no training settings');
  const s = stored as Record<string, unknown>;
  const input = Object.fromEntries(TRAINING_SETTINGS.filter((k) => s[k] !== undefined).map((k) => [k, s[k]])) as RunSettingsInput;
  const full = runSettings(input);
  for (const k of TRAINING_SETTINGS) {
    if (s[k] !== undefined && typeof s[k] !== typeof full[k]) throw new Error(`training setting ${k} is a ${typeof s[k]}, expected a ${typeof full[k]}`);
  }
  return Object.fromEntries(TRAINING_SETTINGS.map((k) => [k, full[k]])) as TrainingSettings;
}

/** What runSettings takes: any setting, the nested ones in part. */
export interface RunSettingsInput extends Partial<Omit<RunSettings, 'schedule' | 'adam' | 'eval'>> {
  schedule?: Partial<ScheduleConfig>;
  adam?: Partial<AdamConfig>;
  eval?: Partial<EvalSettings>;
}

/** TensorFlow.js's epsilon for float32 Adam. */
const ADAM_EPSILON = 1e-7;

/** The one place a run's defaults live; Adam's come from the preset unless given. */
export function runSettings(input: RunSettingsInput = {}): RunSettings {
  const preset = input.preset ?? DEFAULT_PRESET;
  const { optimizer, batchSize, labelSmoothing, lrDecayFrom, emaDecay } = getPreset(preset);
  return {
    preset,
    seed: input.seed ?? 1,
    batchSize: input.batchSize ?? batchSize,
    schedule: { pretrainSteps: 30, dStepsPerG: 1, steps: TRAIN_STEPS, lrDecayFrom, ...input.schedule },
    adam: { ...optimizer, epsilon: ADAM_EPSILON, ...input.adam },
    bnMomentum: input.bnMomentum ?? 0.9,
    emaDecay: input.emaDecay ?? emaDecay,
    emaHorizon: input.emaHorizon ?? EMA_HORIZON,
    labelSmoothing: input.labelSmoothing ?? labelSmoothing,
    aggregate: input.aggregate ?? 'mean',
    trim: input.trim ?? 1,
    ...(input.dataDir !== undefined ? { dataDir: input.dataDir } : {}),
    ...(input.out !== undefined ? { out: input.out } : {}),
    sampleEvery: input.sampleEvery ?? 100,
    checkpointEvery: input.checkpointEvery ?? 200,
    eval: { every: 0, samples: 2000, parzen: false, ...input.eval },
    minWorkers: input.minWorkers ?? 1,
    roundTimeoutS: input.roundTimeoutS ?? 0,
    minRoundTimeoutS: input.minRoundTimeoutS ?? 10,
    outlierRatio: input.outlierRatio ?? 10,
    heartbeatMs: input.heartbeatMs ?? 1000,
    wireDtype: input.wireDtype ?? 'float32',
    relaySums: input.relaySums ?? 'exact',
  };
}

/** The coordinator's network edge: where it listens and whom it lets in. Never stored in checkpoints. */
export interface ServerSettings {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** Close the server once training is done (otherwise it keeps serving the generator). */
  exitWhenDone: boolean;
  /** Seconds a new connection has to finish its HTTP upgrade and say hello. */
  handshakeTimeoutS: number;
  /** Shared secret for workers, fetch and HTTP; generated when binding a non-loopback address without one. */
  token?: string;
  /** PEM certificate and key: serve wss:// and https://. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Open connections beyond this are refused at the upgrade (503); only authenticated peers get one. */
  maxConnections: number;
  /** Failed authentications per address per minute; beyond, that address's wrong or missing tokens get 429 (the right token still gets in). */
  maxAuthFailuresPerMinute: number;
  /** Failed authentications per minute from all addresses together; beyond, every wrong or missing token gets 429. */
  maxAuthFailuresPerMinuteTotal: number;
  /** Browser origins (`https://host[:port]`) allowed to open a WebSocket; an upgrade with any other Origin header gets 403. */
  allowedOrigins: string[];
}

/** Server defaults: all interfaces, port 8787. */
export function serverSettings(input: Partial<ServerSettings> = {}): ServerSettings {
  return {
    host: '0.0.0.0',
    port: 8787,
    exitWhenDone: false,
    handshakeTimeoutS: 10,
    maxConnections: 64,
    maxAuthFailuresPerMinute: 5,
    maxAuthFailuresPerMinuteTotal: 100,
    allowedOrigins: [],
    ...input,
  };
}
