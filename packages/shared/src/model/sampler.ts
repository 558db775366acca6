import * as tf from '@tensorflow/tfjs';
import { Rng, mixSeed } from '../data/index.js';
import type { ModelPreset } from './preset.js';
import { toTensors } from './params.js';

/** The fixed noise batch behind every sample grid of a run, so grids are comparable over time. */
export function fixedNoise(preset: ModelPreset, seed: number, n = 64): Float32Array {
  return new Rng(mixSeed(seed, 0x5a3)).fillNormal(new Float32Array(n * preset.noiseDim));
}

/** Rows per generator call: bounds the activations (10 000 seed samples at once overflow wasm memory). */
const CHUNK = 256;

/** Generator images (inference-mode batch norm: moving statistics), flattened n*h*w in [-1, 1]. */
export async function generateImages(preset: ModelPreset, params: ReadonlyMap<string, Float32Array>, noise: Float32Array): Promise<Float32Array> {
  const n = noise.length / preset.noiseDim;
  const [h, w, c] = preset.imageShape;
  const size = h * w * c;
  const out = new Float32Array(n * size);
  const generatorParams = new Map([...params].filter(([name]) => preset.params.find((s) => s.name === name)?.network === 'G'));
  const tensors = toTensors(preset, generatorParams);
  try {
    for (let start = 0; start < n; start += CHUNK) {
      const rows = Math.min(CHUNK, n - start);
      const z = noise.subarray(start * preset.noiseDim, (start + rows) * preset.noiseDim);
      const images = tf.tidy(() => preset.generator(tensors, tf.tensor2d(z, [rows, preset.noiseDim]), false).images);
      out.set((await images.data()) as Float32Array, start * size);
      images.dispose();
    }
    return out;
  } finally {
    tf.dispose([...tensors.values()]);
  }
}
