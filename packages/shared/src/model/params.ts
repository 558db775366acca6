import * as tf from '@tensorflow/tfjs';
import { Rng, mixSeed } from '../rng.js';
import type { Group, ModelPreset, ParamSpec } from './preset.js';

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

export const specsOf = (preset: ModelPreset, group: Group, trainable = true): ParamSpec[] =>
  preset.params.filter((s) => s.group === group && s.trainable === trainable);

export function countParams(preset: ModelPreset, group?: Group): number {
  return preset.params.filter((s) => group === undefined || s.group === group).reduce((n, s) => n + sizeOf(s.shape), 0);
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
