import * as tf from '@tensorflow/tfjs';
import { Rng } from '@ganfleet/shared/data';
import { writeGridPng } from '@ganfleet/shared/image';
import { loadGeneratorModel } from '@ganfleet/shared/model';

/** Draws `n` images from a saved generator (it runs in inference mode) into a PNG grid. */
export async function sampleGenerator(opts: { modelDir: string; n: number; seed: number; out: string }): Promise<void> {
  const model = await loadGeneratorModel(opts.modelDir);
  try {
    const inputShape = model.inputs[0]?.shape;
    const outputShape = model.outputs[0]?.shape;
    const noiseDim = inputShape?.[1];
    const [h, w] = [outputShape?.[1], outputShape?.[2]];
    if (!noiseDim || !h || !w) throw new Error(`${opts.modelDir}: not a generator (input ${String(inputShape)}, output ${String(outputShape)})`);
    const noise = new Rng(opts.seed).fillNormal(new Float32Array(opts.n * noiseDim));
    const images = tf.tidy(() => model.predict(tf.tensor2d(noise, [opts.n, noiseDim])) as tf.Tensor);
    const values = (await images.data()) as Float32Array;
    images.dispose();
    await writeGridPng(opts.out, values, opts.n, h, w);
  } finally {
    model.dispose();
  }
}
