import { type Command, Option } from 'commander';
import { createLogger } from '@ganfleet/shared/log';
import type { EvalResult } from '@ganfleet/shared/eval';
import { type BackendChoice, backendOption, int } from './options.js';

interface EvalFlags {
  model: string;
  n: number;
  seed: number;
  parzen?: boolean;
  parzenSamples?: number;
  parzenTest?: number;
  data?: string;
  json?: boolean;
  backend: BackendChoice;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
}

/** `ganfleet eval`: scores a saved generator with the bundled MNIST classifier (and Parzen windows). */
export function addEvalCommand(program: Command): void {
  program
    .command('eval')
    .description('score a saved generator: FID, mode coverage and Inception Score with an MNIST classifier; optionally Parzen log-likelihood')
    .requiredOption('--model <dir>', 'generator directory (model.json + weights)')
    .addOption(new Option('--n <count>', 'samples to draw').argParser(int(2)).default(10_000))
    .addOption(new Option('--seed <n>', 'noise seed').argParser(int(0)).default(1))
    .option('--parzen', 'also the Parzen-window log-likelihood of the test set (Goodfellow et al. 2014; minutes)')
    .addOption(new Option('--parzen-samples <count>', 'Parzen: window centres, the first of the samples (default: --n; implies --parzen)').argParser(int(1)))
    .addOption(new Option('--parzen-test <count>', 'Parzen: test images scored (default: all 10000; implies --parzen)').argParser(int(1)))
    .option('--data <dir>', 'MNIST IDX directory (default: bundled MNIST)')
    .option('--json', 'print the result as JSON')
    .addOption(backendOption())
    .addOption(
      new Option('--log-level <level>', 'progress messages on stderr').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('warn'),
    )
    .action(async (flags: EvalFlags) => {
      const log = createLogger({ level: flags.logLevel, pretty: true });
      // Loaded when the command runs (see main.ts).
      const [{ selectBackend }, { evaluateGenerator }] = await Promise.all([import('@ganfleet/shared/backends'), import('@ganfleet/shared/eval')]);
      await selectBackend(flags.backend, (msg, fields) => log.debug(fields ?? {}, msg));
      const parzen = flags.parzen || flags.parzenSamples !== undefined || flags.parzenTest !== undefined;
      const result = await evaluateGenerator(flags.model, {
        n: flags.n,
        seed: flags.seed,
        ...(parzen
          ? { parzen: { ...(flags.parzenSamples ? { samples: flags.parzenSamples } : {}), ...(flags.parzenTest ? { test: flags.parzenTest } : {}) } }
          : {}),
        ...(flags.data ? { dataDir: flags.data } : {}),
        log: (msg, fields) => log.info(fields ?? {}, msg),
      });
      process.stdout.write(flags.json ? `${JSON.stringify(result)}\n` : summary(flags.model, flags.seed, result));
    });
}

function summary(model: string, seed: number, r: EvalResult): string {
  const pct = (count: number): string => `${((100 * count) / r.n).toFixed(1)}%`;
  const lines = [
    `generator ${model}: ${r.n} samples, noise seed ${seed}`,
    `FID vs MNIST test set: ${r.fid.toFixed(3)} (MNIST classifier features, ${r.featureDim}-d layer '${r.featureLayer}'; not Inception-FID)`,
    `modes: ${r.modes}/10 with >= 1% of samples; classes ${r.classHistogram.map((c, i) => `${i}:${pct(c)}`).join(' ')}`,
    `KL(classes || uniform): ${r.klUniform.toFixed(4)} nats; mean top-class confidence ${r.meanConfidence.toFixed(4)}`,
    `classifier Inception Score: ${r.inceptionScore.toFixed(3)} (max 10)`,
  ];
  if (r.parzen) {
    const p = r.parzen;
    lines.push(
      `Parzen log-likelihood: ${p.mean.toFixed(1)} ± ${p.stderr.toFixed(1)} nats (sigma ${p.sigma.toFixed(3)} from ${p.validation} validation images; ` +
        `${p.samples} samples, ${p.test} test images)`,
    );
  }
  return `${lines.join('\n')}\n`;
}
