import type * as tf from '@tensorflow/tfjs';
import { type Dataset, loadDataset } from '../data/index.js';
import { CLASSIFIER_DIR, CLASSIFIER_FEATURE_LAYER, loadClassifier } from './classifier.js';
import { classifierOutputs } from './classifierOutputs.js';
import { classStatistics } from './classStatistics.js';
import { frechetDistance } from './frechetDistance.js';
import { type GaussianStats, gaussianStats } from './gaussianStats.js';
import { type ParzenResult, parzenEvaluate } from './parzen.js';
import { referenceStats } from './referenceStats.js';

export interface EvaluatorOptions {
  /** MNIST IDX directory (default: the bundled copy): the test set is the FID and Parzen reference. */
  dataDir?: string;
  /** Classifier directory (default: the committed one). */
  classifierDir?: string;
}

export interface ParzenOptions {
  /** Generator samples used as window centres: the first ones given (default: all). */
  samples?: number;
  /** Test images scored (default: all 10 000). */
  test?: number;
  /** Validation images (training images from index 50 000) that choose sigma (default: 1 000). */
  validation?: number;
}

export interface EvalOptions {
  /** Also the Parzen-window log-likelihood: minutes for 10 000 x 10 000 images on wasm. */
  parzen?: boolean | ParzenOptions;
  /** Progress messages. */
  log?: (msg: string, fields?: object) => void;
}

export interface EvalResult {
  /** Images evaluated. */
  n: number;
  /** Fréchet distance to the test set in the classifier's feature space: not comparable to Inception-FID. */
  fid: number;
  /** Classes with at least 1 % of the samples (by top prediction), out of 10. */
  modes: number;
  /** Samples per class, by top prediction. */
  classHistogram: number[];
  /** KL(class histogram || uniform), nats. */
  klUniform: number;
  meanConfidence: number;
  /** exp(E KL(p(y|x) || p(y))) with the MNIST classifier: 1 to 10. */
  inceptionScore: number;
  featureLayer: string;
  featureDim: number;
  parzen?: ParzenResult;
}

/** Where the validation split starts in the MNIST training set (the split of Goodfellow et al.). */
const VALIDATION_START = 50_000;

/**
 * Scores generated MNIST digits. Holds the classifier and the test set's feature statistics, so
 * a trainer can create one and call `evaluate` repeatedly; `dispose` frees the classifier.
 */
export class Evaluator {
  private validation: Float32Array | undefined;

  private constructor(
    private readonly classifier: tf.LayersModel,
    private readonly testSet: Dataset,
    /** Feature statistics of the test set: the FID reference. */
    readonly reference: GaussianStats,
    private readonly dataDir: string | undefined,
  ) {}

  static async create(opts: EvaluatorOptions = {}): Promise<Evaluator> {
    const dirOpt = opts.dataDir === undefined ? {} : { dir: opts.dataDir };
    const classifierDir = opts.classifierDir ?? CLASSIFIER_DIR;
    const [classifier, testSet] = await Promise.all([loadClassifier(classifierDir), loadDataset({ split: 'test', ...dirOpt })]);
    try {
      return new Evaluator(classifier, testSet, await referenceStats(classifier, classifierDir, testSet), opts.dataDir);
    } catch (e) {
      classifier.dispose();
      throw e;
    }
  }

  /** Scores `n` images (n*28*28 values in [-1, 1], like the dataset). */
  async evaluate(images: Float32Array, n: number, opts: EvalOptions = {}): Promise<EvalResult> {
    const out = await classifierOutputs(this.classifier, images, n);
    const classes = classStatistics(out.probs, n, out.classes);
    const result: EvalResult = {
      n,
      fid: frechetDistance(gaussianStats(out.features, n, out.featureDim), this.reference),
      modes: classes.modes,
      classHistogram: classes.histogram,
      klUniform: classes.klUniform,
      meanConfidence: classes.meanConfidence,
      inceptionScore: classes.inceptionScore,
      featureLayer: CLASSIFIER_FEATURE_LAYER,
      featureDim: out.featureDim,
    };
    opts.log?.('classifier metrics', result);
    if (opts.parzen) result.parzen = await this.parzen(images, n, opts.parzen === true ? {} : opts.parzen, opts.log);
    return result;
  }

  dispose(): void {
    this.classifier.dispose();
  }

  private async parzen(images: Float32Array, n: number, opts: ParzenOptions, log: EvalOptions['log']): Promise<ParzenResult> {
    const size = this.testSet.height * this.testSet.width;
    const samples = opts.samples ?? n;
    const test = opts.test ?? this.testSet.count;
    const validation = opts.validation ?? 1000;
    if (samples < 1 || samples > n) throw new Error(`parzen: ${samples} samples asked, ${n} given`);
    if (test < 1 || test > this.testSet.count) throw new Error(`parzen: ${test} test images asked, ${this.testSet.count} held`);
    this.validation ??= await this.loadValidation();
    if (validation < 1 || validation > this.validation.length / size)
      throw new Error(`parzen: ${validation} validation images asked, ${this.validation.length / size} held`);
    log?.('parzen window', { samples, validation, test });
    const started = performance.now();
    const result = await parzenEvaluate(
      toUnit(images.subarray(0, samples * size)),
      samples,
      this.validation.subarray(0, validation * size),
      validation,
      toUnit(this.testSet.images.subarray(0, test * size)),
      test,
    );
    log?.('parzen done', { ...result, seconds: (performance.now() - started) / 1000 });
    return result;
  }

  /** The validation split: training images from VALIDATION_START on, pixels in [0, 1]. */
  private async loadValidation(): Promise<Float32Array> {
    const train = await loadDataset({ split: 'train', ...(this.dataDir === undefined ? {} : { dir: this.dataDir }) });
    if (train.height !== this.testSet.height || train.width !== this.testSet.width) throw new Error('parzen: training and test images differ in size');
    const size = train.height * train.width;
    return toUnit(train.images.subarray(VALIDATION_START * size));
  }
}

/** [-1, 1] pixels (the dataset's and the generator's range) to [0, 1], the range of the paper. */
function toUnit(values: Float32Array): Float32Array {
  return values.map((v) => (v + 1) / 2);
}
