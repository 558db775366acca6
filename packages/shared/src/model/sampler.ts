import * as tf from '@tensorflow/tfjs';
import { Rng, mixSeed } from '../rng.js';
import type { ModelPreset } from './preset.js';
import { toTensors } from './params.js';

/** The fixed noise batch behind every sample grid of a run, so grids are comparable over time. */
export function fixedNoise(preset: ModelPreset, seed: number, n = 64): Float32Array {
  return new Rng(mixSeed(seed, 0x5a3)).fillNormal(new Float32Array(n * preset.noiseDim));
}

/** Generator images (inference-mode batch norm: moving statistics), flattened n*h*w in [-1, 1]. */
export async function generateImages(preset: ModelPreset, params: ReadonlyMap<string, Float32Array>, noise: Float32Array): Promise<Float32Array> {
  const n = noise.length / preset.noiseDim;
  const tensors = toTensors(preset, params);
  try {
    const images = tf.tidy(() => preset.generator(tensors, tf.tensor2d(noise, [n, preset.noiseDim]), false).images);
    const data = (await images.data()) as Float32Array;
    images.dispose();
    return data;
  } finally {
    tf.dispose([...tensors.values()]);
  }
}
