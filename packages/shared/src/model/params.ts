import * as tf from '@tensorflow/tfjs';
import { Rng, mixSeed } from '../data/index.js';
import type { ModelPreset, ParamSpec } from './preset.js';
import type { Phase } from '../wire/index.js';

/** Parameters as plain float32 arrays by name, in the preset's order: what travels and what Adam updates. */
export type ParamArrays = Map<string, Float32Array>;

export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Deterministic initialisation: parameter i draws from its own stream, so order changes elsewhere do not matter. */
export function initParams(preset: ModelPreset, seed: number): ParamArrays {
  const out: ParamArrays = new Map();
  preset.params.forEach((spec, i) => {
    const values = new Float32Array(sizeOf(spec.shape));
    const init = spec.init;
    if (init.kind === 'truncatedNormal') new Rng(mixSeed(seed, 0x1417, i)).fillTruncatedNormal(values, init.stddev);
    else if (init.kind === 'ones') values.fill(1);
    out.set(spec.name, values);
  });
  return out;
}

/** Pixel values stay this far inside tanh's range (-1, 1): atanh(2p - 1) with p in [1e-4, 1 - 1e-4]. */
const MEAN_PIXEL_LIMIT = 1 - 2e-4;

/**
 * The data-dependent part of initialisation: the preset's imageBias from the training images'
 * mean (`meanImage`, per pixel in [-1, 1]), as the original GAN code does with its sigmoid output.
 */
export function startFromData(preset: ModelPreset, params: ParamArrays, meanImage: Float32Array): void {
  const bias = params.get(preset.imageBias);
  if (!bias) throw new Error(`preset ${preset.name} has no parameter ${preset.imageBias}`);
  const pixels = meanImage.length;
  if (bias.length !== pixels && bias.length !== 1) throw new Error(`${preset.imageBias} has ${bias.length} values, expected 1 or ${pixels}`);
  const overall = meanImage.reduce((a, b) => a + b, 0) / pixels;
  for (let i = 0; i < bias.length; i++) {
    const m = bias.length === 1 ? overall : (meanImage[i] as number);
    bias[i] = Math.atanh(Math.min(MEAN_PIXEL_LIMIT, Math.max(-MEAN_PIXEL_LIMIT, m)));
  }
}

/** A network's trainable parameters (default), its others (batch-norm moving statistics), or all of them. */
export const specsOf = (preset: ModelPreset, phase: Phase, trainable: boolean | 'all' = true): ParamSpec[] =>
  preset.params.filter((s) => s.network === phase && (trainable === 'all' || s.trainable === trainable));

export function countParams(preset: ModelPreset, network?: Phase): number {
  return preset.params.filter((s) => network === undefined || s.network === network).reduce((n, s) => n + sizeOf(s.shape), 0);
}

/** Float32 arrays -> tensors (the caller owns and disposes them). */
export function toTensors(preset: ModelPreset, arrays: ReadonlyMap<string, Float32Array>): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const spec of preset.params) {
    const values = arrays.get(spec.name);
    if (values) out.set(spec.name, tf.tensor(values, spec.shape, 'float32'));
  }
  return out;
}

export function cloneParams(params: ReadonlyMap<string, Float32Array>): ParamArrays {
  return new Map([...params].map(([k, v]) => [k, v.slice()]));
}
