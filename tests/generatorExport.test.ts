import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@ganfleet/shared/log';
import { fixedNoise, generateImages, getPreset } from '@ganfleet/shared/model';
import { probeNativeAddon, selectBackend } from '@ganfleet/shared/backends';
import { RunGenerator, trainInProcess } from '@ganfleet/coordinator';
import { testRun } from './helpers/cluster.js';

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
    // Layers and ganfleet on the same backend: the fastest CPU one here (native where the addon is built).
    await selectBackend((await probeNativeAddon()).available ? 'native' : 'wasm');
    dir = await mkdtemp(join(tmpdir(), 'ganfleet-export-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await selectBackend('cpu');
  });

  for (const name of ['mlp', 'conv']) {
    it(`${name}: tf.loadLayersModel over HTTP loads generator/ and generator-raw/ and reproduces the trainer's inference output`, async () => {
      const out = join(dir, name);
      // An averaged generator on both presets (conv's defaults keep none).
      const settings = testRun({ preset: name, seed: 3, batchSize: 4, pretrainSteps: 1, steps: 2, bnMomentum: 0.5, emaDecay: 0.9999, out });
      const run = await trainInProcess({ settings, microBatches: 1, log: createLogger({ level: 'silent' }) });
      const generators = new RunGenerator(run);
      for (const [subdir, kind] of [
        ['generator', 'averaged'],
        ['generator-raw', 'raw'],
      ] as const) {
        const server = await serve(join(out, subdir));
        try {
          // Plain TensorFlow.js, as in a browser: no ganfleet code involved in loading.
          const model = await tf.loadLayersModel(`http://127.0.0.1:${(server.address() as AddressInfo).port}/model.json`);
          const preset = getPreset(name);
          // 300 rows: more than one of generateImages' chunks.
          const noise = fixedNoise(preset, 9, 300);
          const y = model.predict(tf.tensor2d(noise, [300, 100])) as tf.Tensor;
          expect(y.shape).toEqual([300, 28, 28, 1]);
          const got = await y.data();
          const params = await generators.params(kind);
          const expected = await generateImages(preset, params, noise);
          let maxErr = 0;
          for (let i = 0; i < got.length; i++) maxErr = Math.max(maxErr, Math.abs((got[i] as number) - (expected[i] as number)));
          // Same math, different kernels (layers' batch norm vs ours): float32 rounding only.
          expect(maxErr, subdir).toBeLessThan(1e-4);
          // The moving statistics were trained (raw) or recomputed (averaged), not left at their initial 0/1.
          if (name === 'conv')
            expect(
              Array.from(params.get('g/bn1/moving_mean') as Float32Array).some((v) => v !== 0),
              subdir,
            ).toBe(true);
          model.dispose();
          y.dispose();
        } finally {
          server.close();
        }
      }
    });
  }
});
