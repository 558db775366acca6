import type { Phase } from '@ganfleet/shared/wire';

export interface ScheduleConfig {
  /** D-only rounds before alternation starts (the reference uses 30). */
  pretrainSteps: number;
  /** D rounds per G round once alternating (k in Goodfellow et al.). */
  dStepsPerG: number;
  /** G steps (iterations) to train after pre-training. */
  steps: number;
  /**
   * Fraction of the steps after which both learning rates fall linearly to 0 at the last step
   * (1 or absent: constant learning rates).
   */
  lrDecayFrom?: number;
}

/**
 * Which phase each round is. Round r < pretrain is D; after that rounds come in
 * blocks of k D rounds followed by one G round. One iteration = one block.
 */
export class Schedule {
  constructor(readonly config: ScheduleConfig) {}

  get totalRounds(): number {
    return this.config.pretrainSteps + this.config.steps * (this.config.dStepsPerG + 1);
  }

  phaseOf(round: number): Phase {
    const { pretrainSteps, dStepsPerG } = this.config;
    if (round < pretrainSteps) return 'D';
    return (round - pretrainSteps) % (dStepsPerG + 1) === dStepsPerG ? 'G' : 'D';
  }

  /** The learning-rate factor of round `round`: 1, then linear to 0 over the decay's iterations. */
  lrScale(round: number): number {
    const { steps, lrDecayFrom = 1 } = this.config;
    const start = lrDecayFrom * steps;
    const iteration = this.iterationsAfter(round);
    if (iteration < start || steps <= start) return 1;
    return Math.max(0, 1 - (iteration - start) / (steps - start));
  }

  /** Completed iterations (G steps) once `round` rounds have been applied. */
  iterationsAfter(rounds: number): number {
    const { pretrainSteps, dStepsPerG } = this.config;
    return Math.max(0, Math.floor((rounds - pretrainSteps) / (dStepsPerG + 1)));
  }
}
