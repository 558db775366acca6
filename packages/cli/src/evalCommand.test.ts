import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Rng } from '@ganfleet/shared/data';
import { generatorArtifacts, getPreset, initParams, loadGeneratorModel, writeGeneratorArtifacts } from '@ganfleet/shared/model';
import { selectBackend } from '@ganfleet/shared/backends';
import { type EvalResult, Evaluator } from '@ganfleet/shared/eval';
import { addEvalCommand } from './evalCommand.js';

/** Runs `ganfleet eval ...args` in this process and returns what it printed on stdout. */
async function runEval(args: string[]): Promise<string> {
  const program = new Command('ganfleet').exitOverride();
  addEvalCommand(program);
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    await program.parseAsync(['node', 'ganfleet', 'eval', ...args]);
  } finally {
    spy.mockRestore();
  }
  return out;
}

describe('ganfleet eval', () => {
  let dir: string;
  beforeAll(async () => {
    await selectBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), 'ganfleet-eval-'));
    // An untrained generator: enough to check the plumbing, not the scores.
    const preset = getPreset('mlp');
    await writeGeneratorArtifacts(dir, await generatorArtifacts(preset, initParams(preset, 5)));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('--json prints the scores of the samples the seed gives', async () => {
    const result = JSON.parse(
      await runEval(['--model', dir, '--n', '300', '--seed', '4', '--json', '--backend', 'wasm', '--parzen-samples', '200', '--parzen-test', '50']),
    ) as EvalResult;

    // The same samples drawn independently: the seed's N(0, 1) noise through the saved model.
    const model = await loadGeneratorModel(dir);
    const y = model.predict(tf.tensor2d(new Rng(4).fillNormal(new Float32Array(300 * 100)), [300, 100])) as tf.Tensor;
    const images = (await y.data()) as Float32Array;
    y.dispose();
    model.dispose();
    const evaluator = await Evaluator.create();
    const expected = await evaluator.evaluate(images, 300, { parzen: { samples: 200, test: 50 } });
    evaluator.dispose();

    expect(result).toMatchObject({ n: 300, modes: expected.modes, classHistogram: expected.classHistogram, featureDim: 64 });
    expect(result.fid).toBeCloseTo(expected.fid, 3);
    expect(result.inceptionScore).toBeCloseTo(expected.inceptionScore, 4);
    expect(result.parzen).toMatchObject({ samples: 200, test: 50, validation: 1000, sigma: expected.parzen?.sigma });
    expect(result.parzen?.mean).toBeCloseTo(expected.parzen?.mean as number, 2);
  });

  it('prints a human summary by default', async () => {
    const text = await runEval(['--model', dir, '--n', '100', '--backend', 'wasm']);
    expect(text).toMatch(/^generator .*: 100 samples, noise seed 1\n/);
    expect(text).toMatch(/FID vs MNIST test set: \d+\.\d{3} \(MNIST classifier features, 64-d layer 'features'; not Inception-FID\)/);
    expect(text).toMatch(/modes: \d+\/10/);
    expect(text).toMatch(/classifier Inception Score: \d+\.\d{3} \(max 10\)/);
    expect(text).not.toMatch(/Parzen/);
  });
});
