import { randomBytes } from 'node:crypto';
import { useFastestUpdateLoops } from '@ganfleet/shared/backends';
import { loadDataset, meanImage } from '@ganfleet/shared/data';
import type { Logger } from '@ganfleet/shared/log';
import { getPreset } from '@ganfleet/shared/model';
import type { RunEvents } from './events.js';
import { LocalSlots } from './localSlots.js';
import { RunLoop } from './runLoop.js';
import type { RunSettings } from './settings.js';
import type { TrainingRun } from './trainingRun.js';

export interface InProcessOptions {
  settings: RunSettings;
  /** Gradient accumulation: micro-batches per round, each of settings.batchSize (what that many workers compute). */
  microBatches: number;
  log: Logger;
}

export interface InProcessHandle {
  events: RunEvents;
  run: TrainingRun;
  done: Promise<TrainingRun>;
}

/**
 * The single-process trainer: the run loop with every slot's gradients computed in this
 * process. It is the reference that every distributed run is checked against.
 */
export async function startInProcess(opts: InProcessOptions): Promise<InProcessHandle> {
  const { settings, log } = opts;
  const preset = getPreset(settings.preset);
  log.info(await useFastestUpdateLoops(), 'update loops');
  const dataset = await loadDataset({ split: 'train', ...(settings.dataDir ? { dir: settings.dataDir } : {}) });
  const loop = new RunLoop(settings, preset, { count: dataset.count, meanImage: meanImage(dataset) }, undefined, randomBytes(6).toString('hex'), log);
  log.info(
    { preset: preset.name, dataset: dataset.name, rounds: loop.run.schedule.totalRounds, microBatches: opts.microBatches },
    'in-process training started',
  );
  const slots = new LocalSlots(preset, dataset, opts.microBatches, 1 - settings.labelSmoothing);
  return { events: loop.events, run: loop.run, done: loop.train(slots) };
}

export async function trainInProcess(opts: InProcessOptions): Promise<TrainingRun> {
  return (await startInProcess(opts)).done;
}
