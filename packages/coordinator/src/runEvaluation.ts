import { type EvalResult, Evaluator, type ModelPreset, Rng, generateImages, mixSeed } from '@ganfleet/shared';

export interface EvalSettings {
  /** Evaluate every this many steps (and at the end); 0 or absent: never. */
  evalEvery?: number;
  /** Generator samples per evaluation (default 2000). */
  evalSamples?: number;
  /** Also the Parzen-window log-likelihood (slow: ~30 s for 10 000 samples here). */
  evalParzen?: boolean;
  dataDir?: string;
}

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
  ) {
    this.n = settings.evalSamples ?? 2000;
    this.noise = new Rng(mixSeed(seed, 0xe7a1)).fillNormal(new Float32Array(this.n * preset.noiseDim));
  }

  /** True when `step` is one of the evaluation points. */
  due(step: number): boolean {
    const every = this.settings.evalEvery ?? 0;
    return every > 0 && step > 0 && step % every === 0;
  }

  get enabled(): boolean {
    return (this.settings.evalEvery ?? 0) > 0;
  }

  async evaluate(params: ReadonlyMap<string, Float32Array>): Promise<EvalResult> {
    this.evaluator ??= Evaluator.create(this.settings.dataDir ? { dataDir: this.settings.dataDir } : {});
    const evaluator = await this.evaluator;
    const images = await generateImages(this.preset, params, this.noise);
    return evaluator.evaluate(images, this.n, this.settings.evalParzen ? { parzen: true } : {});
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
