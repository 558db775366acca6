import { loadDataset, meanImage } from '@ganfleet/shared/data';
import { Trainer, getPreset } from '@ganfleet/shared/model';
import { type RoundLog, type RunSettings, TrainingRun, batchContribution } from '@ganfleet/coordinator';

/**
 * What a distributed run should have produced, recomputed in this process: every round planned
 * for as many slots as the coordinator planned, and only the slots it used computed and applied,
 * in order. A run whose attacker was refused must equal this bit for bit.
 */
export async function replay(settings: RunSettings, rounds: readonly RoundLog[]): Promise<TrainingRun> {
  const preset = getPreset(settings.preset);
  const dataset = await loadDataset({ split: 'train', ...(settings.dataDir ? { dir: settings.dataDir } : {}) });
  const run = new TrainingRun(settings, preset, { count: dataset.count, meanImage: meanImage(dataset) });
  const trainer = new Trainer(preset, dataset, 1 - settings.labelSmoothing);
  let synced = -1;
  try {
    for (const r of rounds) {
      if (r.round !== run.round) throw new Error(`replay: round ${r.round} logged where ${run.round} comes next`);
      trainer.update(new Map(run.store.changedSince(synced).map((n) => [n, run.store.params.get(n) as Float32Array])));
      synced = run.store.version;
      const tasks = run.plan(r.planned ?? r.slots);
      const used = r.used ?? tasks.map((_, i) => i);
      const contributions = [];
      for (const slot of used) contributions.push(batchContribution(await trainer.compute(tasks[slot] as (typeof tasks)[number])));
      run.complete(contributions);
    }
    return run;
  } finally {
    trainer.dispose();
  }
}
