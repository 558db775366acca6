import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, fixedNoise, generateImages, getPreset, selectBackend } from '@ganfleet/shared';
import { DEFAULT_ADAM, trainInProcess } from '@ganfleet/coordinator';

/** Serves a directory as a browser would fetch it. */
function serve(dir: string): Promise<Server> {
  const server = createServer((req, res) =>
    createReadStream(join(dir, (req.url ?? '/').slice(1)))
      .on('error', () => res.writeHead(404).end())
      .pipe(res),
  );
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('saved generator', () => {
  let dir: string;
  beforeAll(async () => {
    await selectBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), 'ganfleet-export-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await selectBackend('cpu');
  });

  for (const name of ['mlp', 'seed']) {
    it(`${name}: tf.loadLayersModel over HTTP loads it and reproduces the trainer's inference output`, async () => {
      const out = join(dir, name);
      const run = await trainInProcess({
        preset: name,
        seed: 3,
        batchSize: 4,
        microBatches: 1,
        schedule: { pretrainSteps: 1, dStepsPerG: 1, steps: 2 },
        adam: DEFAULT_ADAM,
        bnMomentum: 0.5,
        sampleEvery: 0,
        out,
        log: createLogger({ level: 'silent' }),
      });
      const server = await serve(join(out, 'generator'));
      try {
        // Plain TensorFlow.js, as in a browser: no ganfleet code involved in loading.
        const model = await tf.loadLayersModel(`http://127.0.0.1:${(server.address() as AddressInfo).port}/model.json`);
        const preset = getPreset(name);
        // 300 rows: more than one of generateImages' chunks.
        const noise = fixedNoise(preset, 9, 300);
        const y = model.predict(tf.tensor2d(noise, [300, 100])) as tf.Tensor;
        expect(y.shape).toEqual([300, 28, 28, 1]);
        const got = await y.data();
        const expected = await generateImages(preset, run.store.params, noise);
        let maxErr = 0;
        for (let i = 0; i < got.length; i++) maxErr = Math.max(maxErr, Math.abs((got[i] as number) - (expected[i] as number)));
        // Same math, different kernels (layers' batch norm vs ours): float32 rounding only.
        expect(maxErr).toBeLessThan(1e-4);
        // The moving statistics were trained, not left at their initial 0/1.
        if (name === 'seed') expect(Array.from(run.store.params.get('g/bn1/moving_mean') as Float32Array).some((v) => v !== 0)).toBe(true);
        model.dispose();
        y.dispose();
      } finally {
        server.close();
      }
    });
  }
});
