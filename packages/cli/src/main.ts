import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { GanError, RELAY_SUMS, type RelaySums } from '@ganfleet/shared/wire';
import { type Logger, createLogger } from '@ganfleet/shared/log';
import type { AdamConfig, RunEvents, RunSettings } from '@ganfleet/coordinator';
import { DEFAULT_PRESET, TRAIN_STEPS } from '@ganfleet/coordinator/defaults';
import { fetchGenerator, startWorker } from '@ganfleet/worker';
import { addEvalCommand } from './evalCommand.js';
import { missingNodeFlags } from './nodeFlags.js';
import { ProgressBar } from './progress.js';
import {
  type BackendChoice,
  type LogFlags,
  type TrainingFlags,
  backendOption,
  int,
  logOptions,
  threadsOption,
  tokenOption,
  trainingOptions,
} from './options.js';

/*
 * Each command loads the heavy modules (TensorFlow.js, through the coordinator and the backends)
 * when it runs, not when the program is built: a worker's connection thread never needs them, and
 * loading them took ~0.7 s of every worker's start.
 */
const coordinatorPackage = () => import('@ganfleet/coordinator');
const backends = () => import('@ganfleet/shared/backends');

/** The `ganfleet` command line: flags become typed configs for the functions the tests call too. */
export function buildProgram(): Command {
  const program = new Command('ganfleet').description('Distributed GAN training on Node.js with TensorFlow.js').showHelpAfterError();

  const train = program
    .command('train')
    .description('train end to end: a local coordinator and local worker processes, or --in-process')
    .option('--in-process', 'train in this one process (the single-process reference trainer)')
    .addOption(new Option('--micro-batches <m>', 'in-process: gradient accumulation over m micro-batches').argParser(int(1)).default(1))
    .addOption(new Option('--local-workers <n>', 'worker processes to start').argParser(int(1)).default(availableParallelism()))
    .addOption(
      new Option('--wire-dtype <dtype>', 'local cluster: encoding of parameters and gradients on the wire').choices(['float32', 'float16']).default('float32'),
    )
    .addOption(new Option('--out <dir>', 'output directory').default('ganfleet-run'))
    .addOption(backendOption())
    .addOption(threadsOption(undefined, 'in-process: the cores; local workers: the cores divided among them'));
  for (const o of [...trainingOptions({ model: DEFAULT_PRESET, steps: TRAIN_STEPS, evalEvery: 1000 }), ...logOptions()]) train.addOption(o);
  train.action(
    async (
      flags: TrainingFlags &
        LogFlags & {
          inProcess?: boolean;
          microBatches: number;
          localWorkers: number;
          out: string;
          wireDtype: 'float32' | 'float16';
          backend: BackendChoice;
          threads?: number;
        },
    ) => {
      const { Schedule, startInProcess } = await coordinatorPackage();
      const { startLocalCluster, threadsPerLocalWorker } = await import('./localCluster.js');
      const settings = await settingsFrom(flags, { out: flags.out, wireDtype: flags.wireDtype, minWorkers: flags.localWorkers });
      // On a terminal (and unless --pretty asks for every line there) a progress bar owns stderr's last line;
      // then only warn+ log lines reach the terminal, above the bar, and --log-file gets them all.
      const bar =
        process.stderr.isTTY && !flags.pretty
          ? new ProgressBar(process.stderr, { totalRounds: new Schedule(settings.schedule).totalRounds, steps: flags.steps })
          : undefined;
      const log = bar
        ? createLogger({ level: flags.logLevel, destination: bar.logStream, ...(flags.logFile ? { file: flags.logFile } : {}) })
        : loggerFrom(flags);
      const threads = flags.threads ?? (flags.inProcess ? availableParallelism() : threadsPerLocalWorker(flags.localWorkers));
      if (flags.inProcess) (await backends()).setNativeThreads(threads);
      warnMissingNodeFlags(log);
      await initBackend(flags.backend, log);
      try {
        const started = flags.inProcess
          ? await startInProcess({ settings, microBatches: flags.microBatches, log })
          : await startLocalCluster({
              settings,
              localWorkers: flags.localWorkers,
              backend: flags.backend,
              threads,
              workerLogLevel: 'warn',
              log,
              ...(bar ? { workerOutput: bar.logStream } : {}),
            });
        if (bar) showProgress(started.events, bar, !flags.inProcess);
        await started.done;
      } finally {
        bar?.finish();
      }
    },
  );

  const coordinator = program
    .command('coordinator')
    .description('serve a training run to remote workers')
    .addOption(new Option('--min-workers <n>', 'rounds wait until this many workers are connected').argParser(int(1)).default(1))
    .addOption(new Option('--out <dir>', 'output directory').default('ganfleet-run'))
    .option('--exit-when-done', 'exit once training is done instead of serving the generator')
    .addOption(
      new Option('--checkpoint-every <rounds>', 'write a checkpoint every this many rounds (0: only at the end and on stop)').argParser(int(0)).default(200),
    )
    .addOption(new Option('--resume <dir>', "continue the run in <dir> from its newest good checkpoint (the checkpoint's settings win)"))
    .addOption(
      new Option(
        '--round-timeout <s>',
        'close a round after this many seconds over the replies received (0: adaptive, 10x the median round, at least --min-round-timeout)',
      )
        .argParser(int(0))
        .default(0),
    )
    .addOption(
      new Option('--wire-dtype <dtype>', 'encoding of parameters and gradients on the wire (float16 halves the bytes)')
        .choices(['float32', 'float16'])
        .default('float32'),
    )
    .addOption(
      new Option(
        '--relay-sums <mode>',
        "how relays send their workers' gradient sums up: exact (the flat run's parameters bit for bit) or float32 (rounded: half the bytes)",
      )
        .choices(RELAY_SUMS)
        .default('exact'),
    )
    .addOption(backendOption());
  for (const o of [...serverOptions(8787), ...trainingOptions({ model: 'conv', steps: 10000, evalEvery: 0 }), ...logOptions()]) coordinator.addOption(o);
  coordinator.action(async (flags: TrainingFlags & LogFlags & CoordinatorFlags) => {
    const log = loggerFrom(flags);
    warnMissingNodeFlags(log);
    // The coordinator runs the generator only to draw sample grids, evaluate and export it.
    await initBackend(flags.backend, log);
    const { serverSettings, startCoordinator } = await coordinatorPackage();
    const handle = await startCoordinator({
      settings: await settingsFrom(flags, {
        out: flags.out,
        minWorkers: flags.minWorkers,
        checkpointEvery: flags.checkpointEvery,
        roundTimeoutS: flags.roundTimeout,
        heartbeatMs: flags.heartbeat,
        wireDtype: flags.wireDtype,
        relaySums: flags.relaySums,
      }),
      server: serverSettings({ ...(await serverFrom(flags)), exitWhenDone: flags.exitWhenDone ?? false }),
      ...(flags.resume ? { resumeFrom: flags.resume } : {}),
      log,
    });
    // Printed once, on stderr, never logged: workers need it to join.
    if (handle.tokenGenerated) process.stderr.write(`ganfleet: no --token given for a non-loopback bind; workers must use --token ${handle.token}\n`);
    // A stop request checkpoints first, so `--resume` continues from here.
    const stop = (): void =>
      void handle
        .checkpoint()
        .then(() => handle.close())
        .then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await handle.done;
  });

  const relay = program
    .command('relay')
    .description(
      "join a coordinator (or relay) for the workers below it: it forwards each round to them and answers with their gradients' sums (exact, or float32 where the run says)",
    )
    .requiredOption('--connect <url>', 'parent address: the coordinator or another relay, e.g. ws://host:8787')
    .addOption(new Option('--ca <file>', 'PEM CA certificate to trust (self-signed parent)'))
    .addOption(new Option('--give-up-after <s>', 'exit when the parent has been unreachable this long').argParser(int(1)).default(300))
    .option('--random-mask', 'mask frames to the parent with random keys (RFC 6455), for proxies that need it');
  for (const o of [...serverOptions(8788), ...logOptions()]) relay.addOption(o);
  relay.action(async (flags: LogFlags & ServerFlags & { connect: string; ca?: string; giveUpAfter: number; randomMask?: boolean }) => {
    const log = loggerFrom(flags);
    warnMissingNodeFlags(log);
    const { runSettings, serverSettings, startRelay } = await coordinatorPackage();
    const handle = startRelay(
      {
        upstream: {
          url: flags.connect,
          randomMask: flags.randomMask ?? false,
          ...(flags.token ? { token: flags.token } : {}),
          ...(flags.ca ? { ca: await readFile(flags.ca) } : {}),
        },
        giveUpAfterS: flags.giveUpAfter,
        server: serverSettings(await serverFrom(flags)),
        pool: { heartbeatMs: flags.heartbeat, outlierRatio: runSettings().outlierRatio },
      },
      log,
    );
    void handle.serving.then((edge) => {
      if (edge.tokenGenerated) process.stderr.write(`ganfleet: no --token given for a non-loopback bind; workers must use --token ${edge.token}\n`);
    });
    process.once('SIGINT', () => void handle.close());
    process.once('SIGTERM', () => void handle.close());
    const reason = await handle.done;
    log.info({ reason }, 'relay finished');
  });

  const worker = program
    .command('worker')
    .description('join a coordinator and compute gradients')
    .requiredOption('--connect <url>', 'coordinator address, e.g. ws://host:8787')
    .option('--data <dir>', 'MNIST-format IDX directory (default: bundled MNIST)')
    .addOption(tokenOption())
    .addOption(new Option('--ca <file>', 'PEM CA certificate to trust (self-signed coordinator)'))
    .addOption(new Option('--give-up-after <s>', 'exit when the coordinator has been unreachable this long').argParser(int(1)).default(300))
    .option('--random-mask', 'mask frames with random keys (RFC 6455), for proxies that need it; default: a zero key, which saves a copy of every frame')
    .option('--no-shared-memory', 'send round frames over the socket even to a coordinator on this machine (default: through memory both map)')
    .addOption(backendOption())
    .addOption(threadsOption(availableParallelism(), "the machine's cores"));
  for (const o of logOptions()) worker.addOption(o);
  worker.action(async (flags: LogFlags & WorkerFlags) => {
    const log = loggerFrom(flags);
    warnMissingNodeFlags(log);
    const handle = await startWorker({
      url: flags.connect,
      backend: flags.backend,
      log,
      giveUpAfterS: flags.giveUpAfter,
      threads: flags.threads,
      randomMask: flags.randomMask ?? false,
      sharedMemory: flags.sharedMemory,
      ...(flags.data ? { dataDir: flags.data } : {}),
      ...(flags.token ? { token: flags.token } : {}),
      ...(flags.ca ? { ca: await readFile(flags.ca) } : {}),
    });
    process.once('SIGINT', () => void handle.close());
    process.once('SIGTERM', () => void handle.close());
    const { rounds, reason } = await handle.done;
    log.info({ rounds, reason }, 'worker finished');
  });

  program
    .command('fetch')
    .description("download the coordinator's current generator (LayersModel)")
    .requiredOption('--connect <url>', 'coordinator address, e.g. ws://host:8787')
    .addOption(new Option('--out <dir>', 'where to write model.json and weights').default('generator'))
    .addOption(tokenOption())
    .addOption(new Option('--ca <file>', 'PEM CA certificate to trust (self-signed coordinator)'))
    .action(async (flags: { connect: string; out: string; token?: string; ca?: string }) => {
      const { step, dir } = await fetchGenerator({
        url: flags.connect,
        out: flags.out,
        ...(flags.token ? { token: flags.token } : {}),
        ...(flags.ca ? { ca: await readFile(flags.ca) } : {}),
      });
      process.stdout.write(`generator at step ${step} written to ${dir}\n`);
    });

  program
    .command('sample')
    .description('draw digits from a saved generator into a PNG grid')
    .requiredOption('--model <dir>', 'generator directory (model.json + weights)')
    .addOption(new Option('--n <count>', 'number of samples').argParser(int(1)).default(64))
    .addOption(new Option('--seed <n>', 'noise seed').argParser(int(0)).default(1))
    .addOption(new Option('--out <file>', 'PNG to write').default('samples.png'))
    .addOption(backendOption())
    .action(async (flags: { model: string; n: number; seed: number; out: string; backend: BackendChoice }) => {
      await initBackend(flags.backend, createLogger({ level: 'warn' }));
      const { sampleGenerator } = await import('./sample.js');
      await sampleGenerator({ modelDir: flags.model, n: flags.n, seed: flags.seed, out: flags.out });
      process.stdout.write(`${flags.n} samples written to ${flags.out}\n`);
    });

  addEvalCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}

interface WorkerFlags {
  connect: string;
  data?: string;
  token?: string;
  ca?: string;
  giveUpAfter: number;
  randomMask?: boolean;
  sharedMemory: boolean;
  backend: BackendChoice;
  threads: number;
}

/** What the coordinator and a relay both serve with: their port, token, TLS and limits. */
interface ServerFlags {
  host: string;
  port: number;
  handshakeTimeout: number;
  token?: string;
  tlsCert?: string;
  tlsKey?: string;
  maxConnections: number;
  allowOrigin: string[];
  heartbeat: number;
}

interface CoordinatorFlags extends ServerFlags {
  minWorkers: number;
  out: string;
  exitWhenDone?: boolean;
  checkpointEvery: number;
  resume?: string;
  roundTimeout: number;
  wireDtype: 'float32' | 'float16';
  relaySums: RelaySums;
  backend: BackendChoice;
}

/** The options of ServerFlags; `port`: the default port. */
function serverOptions(port: number): Option[] {
  return [
    new Option('--host <addr>', 'address to bind').default('0.0.0.0'),
    new Option('--port <n>', 'port to bind (0: any free port)').argParser(int(0)).default(port),
    new Option('--handshake-timeout <s>', 'seconds a connection has to say hello').argParser(int(1)).default(10),
    tokenOption(),
    new Option('--tls-cert <file>', 'PEM certificate: serve wss:// and https://'),
    new Option('--tls-key <file>', 'PEM private key for --tls-cert'),
    new Option('--max-connections <n>', 'open connections beyond this are refused').argParser(int(1)).default(64),
    new Option('--allow-origin <origin>', 'browser origin allowed to open a WebSocket, e.g. https://dash.example.com (repeatable; default: none)')
      .argParser(origins)
      .default([]),
    new Option('--heartbeat <ms>', 'ping interval; a worker silent for 3 intervals is dropped').argParser(int(100)).default(1000),
  ];
}

async function serverFrom(flags: ServerFlags) {
  return {
    host: flags.host,
    port: flags.port,
    handshakeTimeoutS: flags.handshakeTimeout,
    maxConnections: flags.maxConnections,
    allowedOrigins: flags.allowOrigin,
    ...(flags.token ? { token: flags.token } : {}),
    ...(await tlsFrom(flags)),
  };
}

/** --allow-origin: each value as a browser serializes it in the Origin header (scheme, host, port if not the default). */
function origins(value: string, previous: string[]): string[] {
  const origin = URL.canParse(value) ? new URL(value).origin : 'null';
  if (origin === 'null') throw new InvalidArgumentError(`expected an origin such as https://dash.example.com, got "${value}"`);
  return [...previous, origin];
}

async function tlsFrom(flags: ServerFlags): Promise<{ tls?: { cert: Buffer; key: Buffer } }> {
  if (!flags.tlsCert && !flags.tlsKey) return {};
  if (!flags.tlsCert || !flags.tlsKey) throw new GanError('CONFIG_INVALID', '--tls-cert and --tls-key go together');
  return { tls: { cert: await readFile(flags.tlsCert), key: await readFile(flags.tlsKey) } };
}

function loggerFrom(flags: LogFlags): Logger {
  return createLogger({ level: flags.logLevel, pretty: flags.pretty ?? false, ...(flags.logFile ? { file: flags.logFile } : {}) });
}

/** Training processes started without NODE_FLAGS still work, but spend a large share of each round in GC: say so. */
function warnMissingNodeFlags(log: Logger): void {
  const missing = missingNodeFlags();
  if (missing.length > 0)
    log.warn({ missing }, `node was started without ${missing.join(' ')}: rounds will spend much of their time in garbage collection (see docs/benchmarks.md)`);
}

async function initBackend(choice: BackendChoice, log: Logger): Promise<void> {
  const blog = log.child({ component: 'backend' });
  const { selectBackend } = await backends();
  const info = await selectBackend(choice, (msg, fields) => blog.debug(fields ?? {}, msg));
  blog.info({ backend: info.name, requested: info.requested, reason: info.reason, skipped: info.skipped }, `backend ${info.name}`);
}

/** --lr-d and --lr-g where given; without either, the settings carry no per-network entry. */
function networkLearningRates(flags: TrainingFlags): Pick<AdamConfig, 'networkLearningRates'> {
  const rates: NonNullable<AdamConfig['networkLearningRates']> = {};
  if (flags.lrD !== undefined) rates.D = flags.lrD;
  if (flags.lrG !== undefined) rates.G = flags.lrG;
  return Object.keys(rates).length > 0 ? { networkLearningRates: rates } : {};
}

/** The run's settings from the training flags (and the command's own); every default not given here is runSettings'. */
async function settingsFrom(flags: TrainingFlags, command: Partial<RunSettings>): Promise<RunSettings> {
  const { runSettings } = await coordinatorPackage();
  return runSettings({
    ...command,
    preset: flags.model,
    seed: flags.seed,
    ...(flags.batchSize !== undefined ? { batchSize: flags.batchSize } : {}),
    schedule: {
      pretrainSteps: flags.pretrainSteps,
      dStepsPerG: flags.dSteps,
      steps: flags.steps,
      ...(flags.lrDecayFrom !== undefined ? { lrDecayFrom: flags.lrDecayFrom } : {}),
    },
    adam: {
      ...(flags.lr !== undefined ? { learningRate: flags.lr } : {}),
      ...(flags.beta1 !== undefined ? { beta1: flags.beta1 } : {}),
      ...(flags.beta2 !== undefined ? { beta2: flags.beta2 } : {}),
      ...networkLearningRates(flags),
    },
    bnMomentum: flags.bnMomentum,
    ...(flags.emaDecay !== undefined ? { emaDecay: flags.emaDecay } : {}),
    emaHorizon: flags.emaHorizon,
    ...(flags.labelSmoothing !== undefined ? { labelSmoothing: flags.labelSmoothing } : {}),
    aggregate: flags.aggregate,
    trim: flags.trim,
    outlierRatio: flags.outlierRatio,
    minRoundTimeoutS: flags.minRoundTimeout,
    sampleEvery: flags.sampleEvery,
    eval: { every: flags.evalEvery, samples: flags.evalSamples, parzen: flags.evalParzen ?? false },
    ...(flags.data ? { dataDir: flags.data } : {}),
  });
}

/** Feeds the run's rounds to the progress bar (with the worker count when they are remote workers). */
function showProgress(events: RunEvents, bar: ProgressBar, distributed: boolean): void {
  events.on('round', (r) => bar.update({ round: r.round, iteration: r.iteration, phase: r.phase, loss: r.loss, ...(distributed ? { workers: r.slots } : {}) }));
}
