import { join } from 'node:path';
import { writeGridPng } from '@ganfleet/shared/image';
import { type GeneratorArtifacts, type ModelPreset, fixedNoise, generateImages, writeGeneratorArtifacts } from '@ganfleet/shared/model';

/**
 * Where a run writes: `DIR/samples/step-XXXXXX.png`, `DIR/generator/` (LayersModel) and, for a
 * run that averages its generator, `DIR/generator-raw/` (the last weights, not averaged).
 */
export class RunOutputs {
  private readonly noise: Float32Array;
  /** The most recent sample grid written, for the dashboard. */
  latestSamplesPath: string | undefined;

  constructor(
    readonly dir: string,
    readonly preset: ModelPreset,
    seed: number,
  ) {
    this.noise = fixedNoise(preset, seed);
  }

  samplePath(iteration: number): string {
    return join(this.dir, 'samples', `step-${String(iteration).padStart(6, '0')}.png`);
  }

  generatorDir(raw = false): string {
    return join(this.dir, raw ? 'generator-raw' : 'generator');
  }

  /** An 8x8 grid from the run's fixed noise batch, batch norm in inference mode. */
  async writeSamples(params: ReadonlyMap<string, Float32Array>, iteration: number): Promise<string> {
    const [h, w] = this.preset.imageShape;
    const images = await generateImages(this.preset, params, this.noise);
    const path = this.samplePath(iteration);
    await writeGridPng(path, images, this.noise.length / this.preset.noiseDim, h, w);
    this.latestSamplesPath = path;
    return path;
  }

  async saveGenerator(artifacts: GeneratorArtifacts, raw = false): Promise<string> {
    await writeGeneratorArtifacts(this.generatorDir(raw), artifacts);
    return this.generatorDir(raw);
  }
}
