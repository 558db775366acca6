import { mixSeed } from '@ganfleet/shared/data';
import { type ParamArrays, recalibrateBatchNorm, specsOf } from '@ganfleet/shared/model';
import type { TrainingRun } from './trainingRun.js';

/** `averaged`: the moving average of G's weights (the default product); `raw`: G's current weights. */
export type GeneratorKind = 'averaged' | 'raw';

export const GENERATOR_KINDS: readonly GeneratorKind[] = ['averaged', 'raw'];

/** Noise samples over which the averaged generator's batch-norm statistics are pooled. */
const RECALIBRATION_SAMPLES = 1024;

/**
 * The generator a run offers, as G's parameters: what sample grids, evaluations, the written
 * generator, `fetch` and `/generator/*` use. The averaged one's batch-norm statistics are
 * recomputed for its weights, once per parameter version.
 */
export class RunGenerator {
  private cached: { version: number; params: Promise<ParamArrays> } | undefined;

  constructor(private readonly run: TrainingRun) {}

  /** `averaged` falls back to `raw` for a run that keeps no average. */
  kindOf(asked: GeneratorKind): GeneratorKind {
    return asked === 'averaged' && this.run.store.average ? 'averaged' : 'raw';
  }

  /**
   * The weights are read synchronously, so that they belong to the round in force when this is
   * called even if training applies another round before the result is used.
   */
  params(asked: GeneratorKind = 'averaged'): Promise<ParamArrays> {
    const { store, preset, settings } = this.run;
    const average = store.average;
    // G's parameters, copied now; the average holds only trainable ones, the rest are raw.
    const copy = (source?: ReadonlyMap<string, Float32Array>): ParamArrays =>
      new Map(specsOf(preset, 'G', 'all').map((s) => [s.name, ((source?.get(s.name) ?? store.params.get(s.name)) as Float32Array).slice()]));
    if (this.kindOf(asked) === 'raw' || !average) return Promise.resolve(copy());
    if (this.cached?.version !== store.version) {
      const params = recalibrateBatchNorm(preset, copy(average.values), {
        seed: mixSeed(settings.seed, 0xa7e),
        batchSize: settings.batchSize,
        samples: RECALIBRATION_SAMPLES,
      });
      this.cached = { version: store.version, params };
      params.catch(() => (this.cached = undefined));
    }
    return this.cached.params;
  }
}
