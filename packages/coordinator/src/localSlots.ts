import type { Dataset } from '@ganfleet/shared/data';
import { type ModelPreset, Trainer } from '@ganfleet/shared/model';
import { type Contribution, batchContribution } from './paramStore.js';
import type { ComputedRound, SlotComputer } from './runLoop.js';
import type { TrainingRun } from './trainingRun.js';

/**
 * A round's slots computed one after another in this process, as gradient accumulation over
 * `microBatches` micro-batches: exactly what that many workers would compute.
 */
export class LocalSlots implements SlotComputer {
  private readonly trainer: Trainer;
  /** Store version of the trainer's replica (-1: none yet). */
  private synced = -1;

  constructor(
    preset: ModelPreset,
    dataset: Dataset,
    private readonly microBatches: number,
    realLabel: number,
  ) {
    this.trainer = new Trainer(preset, dataset, realLabel);
  }

  async computeRound(run: TrainingRun): Promise<ComputedRound> {
    const { store } = run;
    this.trainer.update(new Map(store.changedSince(this.synced).map((n) => [n, store.params.get(n) as Float32Array])));
    this.synced = store.version;
    const contributions: Contribution[] = [];
    let computeMs = 0;
    for (const task of run.plan(this.microBatches)) {
      const r = await this.trainer.compute(task);
      computeMs = Math.max(computeMs, r.computeMs);
      contributions.push(batchContribution(r));
    }
    return { contributions, timing: { slots: contributions.length, computeMs } };
  }

  finish(): void {
    this.trainer.dispose();
  }
}
