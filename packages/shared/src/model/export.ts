import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import writeFileAtomic from 'write-file-atomic';
import type { ModelPreset } from './preset.js';

/** A generator in TensorFlow.js LayersModel format: `model.json` plus one weights file. */
export interface GeneratorArtifacts {
  modelJson: string;
  weights: Uint8Array;
}

export const WEIGHTS_FILE = 'weights.bin';

/** Builds the preset's LayersModel with the given parameters and serialises it. */
export async function generatorArtifacts(
  preset: ModelPreset,
  params: ReadonlyMap<string, Float32Array>,
  meta: Record<string, unknown> = {},
): Promise<GeneratorArtifacts> {
  const model = preset.buildGeneratorModel();
  try {
    const weights = preset.generatorWeightNames.map((name, i) => {
      const values = params.get(name);
      const shape = model.getWeights()[i]?.shape;
      if (!values || !shape) throw new Error(`generator weight ${name} missing`);
      return tf.tensor(values, shape, 'float32');
    });
    model.setWeights(weights);
    tf.dispose(weights);
    return await serializeLayersModel(model, { preset: preset.name, noiseDim: preset.noiseDim, batchNorm: 'inference uses moving statistics', ...meta });
  } finally {
    model.dispose();
  }
}

/** Any LayersModel as `model.json` text plus one weights buffer, with `meta` under userDefinedMetadata.ganfleet. */
export async function serializeLayersModel(model: tf.LayersModel, meta: Record<string, unknown>): Promise<GeneratorArtifacts> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!artifacts?.weightData || !artifacts.weightSpecs) throw new Error('model serialisation produced no weights');
  const data = artifacts.weightData;
  const modelJson = JSON.stringify({
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version['tfjs-layers']}`,
    convertedBy: null,
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs }],
    userDefinedMetadata: { ganfleet: meta },
  });
  return { modelJson, weights: new Uint8Array(Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data) };
}

/** Writes `model.json` and the weights into `dir` (weights first, so a reader never sees a manifest without them). */
export async function writeGeneratorArtifacts(dir: string, artifacts: GeneratorArtifacts): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(join(dir, WEIGHTS_FILE), Buffer.from(artifacts.weights.buffer, artifacts.weights.byteOffset, artifacts.weights.byteLength));
  await writeFileAtomic(join(dir, 'model.json'), artifacts.modelJson);
}

/** Loads a generator saved by `writeGeneratorArtifacts` (or any single-file LayersModel directory). */
export async function loadGeneratorModel(dir: string): Promise<tf.LayersModel> {
  const manifest = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as {
    modelTopology: object;
    weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  };
  const specs = manifest.weightsManifest.flatMap((g) => g.weights);
  const buffers = await Promise.all(manifest.weightsManifest.flatMap((g) => g.paths).map((p) => readFile(join(dir, p))));
  const bytes = new Uint8Array(Buffer.concat(buffers));
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: manifest.modelTopology, weightSpecs: specs, weightData: bytes.buffer }));
}
