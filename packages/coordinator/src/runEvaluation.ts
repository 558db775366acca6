import { Rng, mixSeed } from '@ganfleet/shared/data';
import { type ModelPreset, generateImages } from '@ganfleet/shared/model';
import { type EvalResult, Evaluator } from '@ganfleet/shared/eval';
import type { EvalSettings } from './settings.js';

/**
 * Quality during training: the generator (inference-mode batch norm) draws from a fixed noise set,
 * and the MNIST classifier scores the images. The classifier and test statistics load once.
 */
export class RunEvaluation {
  private evaluator: Promise<Evaluator> | undefined;
  private readonly noise: Float32Array;
  private readonly n: number;

  constructor(
    private readonly preset: ModelPreset,
    seed: number,
    private readonly settings: EvalSettings,
    private readonly dataDir: string | undefined,
  ) {
    this.n = settings.samples;
    this.noise = new Rng(mixSeed(seed, 0xe7a1)).fillNormal(new Float32Array(this.n * preset.noiseDim));
  }

  /** True when `step` is one of the evaluation points. */
  due(step: number): boolean {
    const every = this.settings.every;
    return every > 0 && step > 0 && step % every === 0;
  }

  get enabled(): boolean {
    return this.settings.every > 0;
  }

  async evaluate(params: ReadonlyMap<string, Float32Array>): Promise<EvalResult> {
    this.evaluator ??= Evaluator.create(this.dataDir ? { dataDir: this.dataDir } : {});
    const evaluator = await this.evaluator;
    const images = await generateImages(this.preset, params, this.noise);
    return evaluator.evaluate(images, this.n, this.settings.parzen ? { parzen: true } : {});
  }

  async dispose(): Promise<void> {
    (await this.evaluator)?.dispose();
  }
}

/** The fields of an evaluation worth a log line (the histogram and sigma scan stay out). */
export function evalSummary(r: EvalResult): Record<string, number> {
  return {
    samples: r.n,
    fid: round(r.fid),
    modes: r.modes,
    klUniform: round(r.klUniform, 4),
    meanConfidence: round(r.meanConfidence, 4),
    inceptionScore: round(r.inceptionScore, 3),
    ...(r.parzen ? { parzen: round(r.parzen.mean), parzenStderr: round(r.parzen.stderr), parzenSigma: round(r.parzen.sigma, 4) } : {}),
  };
}

const round = (x: number, digits = 2): number => Number(x.toFixed(digits));
