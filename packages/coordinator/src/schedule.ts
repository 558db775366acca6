import type { Group } from '@ganfleet/shared';

export interface ScheduleConfig {
  /** D-only rounds before alternation starts (the reference uses 30). */
  pretrainSteps: number;
  /** D rounds per G round once alternating (k in Goodfellow et al.). */
  dStepsPerG: number;
  /** G steps (iterations) to train after pre-training. */
  steps: number;
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

  phaseOf(round: number): Group {
    const { pretrainSteps, dStepsPerG } = this.config;
    if (round < pretrainSteps) return 'D';
    return (round - pretrainSteps) % (dStepsPerG + 1) === dStepsPerG ? 'G' : 'D';
  }

  /** Completed iterations (G steps) once `round` rounds have been applied. */
  iterationsAfter(rounds: number): number {
    const { pretrainSteps, dStepsPerG } = this.config;
    return Math.max(0, Math.floor((rounds - pretrainSteps) / (dStepsPerG + 1)));
  }
}
