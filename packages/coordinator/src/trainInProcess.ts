import { getPreset, loadDataset } from '@ganfleet/shared';
import { Trainer } from '@ganfleet/worker';
import { type EvalSettings, RunEvaluation, evalSummary } from './runEvaluation.js';
import { RunOutputs } from './runOutputs.js';
import { type RoundResult, TrainingRun, type TrainingSettings } from './trainingRun.js';

export interface InProcessConfig extends TrainingSettings, EvalSettings {
  /** Gradient accumulation: micro-batches per round, each of `batchSize` (what N workers compute). */
  microBatches: number;
  /** Called after every applied round (tests and progress display). */
  onRound?: (r: RoundResult) => void;
}

/**
 * The single-process trainer: the same TrainingRun the coordinator drives, with the slots'
 * gradients computed one after another in this process. It is the reference that every
 * distributed run is checked against.
 */
export async function trainInProcess(config: InProcessConfig): Promise<TrainingRun> {
  const preset = getPreset(config.preset);
  const dataset = await loadDataset({ split: 'train', ...(config.dataDir ? { dir: config.dataDir } : {}) });
  const run = new TrainingRun({
    preset,
    seed: config.seed,
    batchSize: config.batchSize,
    schedule: config.schedule,
    adam: config.adam,
    bnMomentum: config.bnMomentum,
    datasetCount: dataset.count,
  });
  const outputs = config.out ? new RunOutputs(config.out, preset, config.seed) : undefined;
  const trainer = new Trainer(preset, dataset);
  const evaluation = new RunEvaluation(preset, config.seed, config);
  const log = config.log;
  log.info({ preset: preset.name, dataset: dataset.name, rounds: run.schedule.totalRounds, microBatches: config.microBatches }, 'in-process training started');
  try {
    let synced = -1;
    while (!run.done) {
      trainer.update(pick(run.store.params, run.store.changedSince(synced)));
      synced = run.store.version;
      const started = performance.now();
      const contributions = [];
      for (const task of run.plan(config.microBatches)) contributions.push(await trainer.compute(task));
      const computeMs = performance.now() - started;
      const result = run.complete(contributions);
      log.info({ round: result.round, step: result.iteration, phase: result.phase, loss: result.loss, computeMs, applyMs: result.applyMs }, 'round');
      config.onRound?.(result);
      const iterationDone = result.phase === 'G';
      if (outputs && iterationDone && config.sampleEvery > 0 && result.iteration % config.sampleEvery === 0 && !run.done) {
        log.info({ step: result.iteration, path: await outputs.writeSamples(run.store.params, result.iteration) }, 'samples written');
      }
      if (iterationDone && (evaluation.due(result.iteration) || (run.done && evaluation.enabled))) {
        log.info({ step: result.iteration, ...evalSummary(await evaluation.evaluate(run.store.params)) }, 'eval');
      }
    }
    if (outputs) {
      const samples = await outputs.writeSamples(run.store.params, run.iteration);
      const generator = await outputs.saveGenerator(run.store.params, { steps: run.iteration, seed: config.seed });
      log.info({ step: run.iteration, samples, generator }, 'training finished');
    }
    return run;
  } finally {
    trainer.dispose();
    await evaluation.dispose();
  }
}

function pick(params: ReadonlyMap<string, Float32Array>, names: readonly string[]): Map<string, Float32Array> {
  return new Map(names.map((n) => [n, params.get(n) as Float32Array]));
}
