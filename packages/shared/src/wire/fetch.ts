/*
 * Generator download for sampling clients (e.g. the CLI's sample command), which
 * connect to the same endpoint as workers but never join training.
 */
import type { Fields } from './fields.js';
import { readVersion } from './handshake.js';

/** Client → coordinator, first and only request on a client connection. */
export interface FetchGenerator {
  type: 'fetchGenerator';
  version: number;
}

/** Coordinator → client, the current generator in tfjs model.json + weights form. */
export interface GeneratorMessage {
  type: 'generator';
  step: number;
  /** tfjs ModelJSON (topology and weightsManifest) as a string. */
  modelJson: string;
  /** The concatenated weight bytes that modelJson's weightsManifest describes. */
  weights: Uint8Array;
}

/** Big enough for any generator topology we build, small enough to bound a hostile frame. */
const MAX_MODEL_JSON_LENGTH = 8 * 1024 * 1024;

export function readFetchGenerator(f: Fields): FetchGenerator {
  const version = readVersion(f);
  return { type: 'fetchGenerator', version };
}

export function readGenerator(f: Fields): GeneratorMessage {
  return {
    type: 'generator',
    step: f.integer('step', 0),
    modelJson: f.string('modelJson', MAX_MODEL_JSON_LENGTH),
    weights: f.bytes('weights'),
  };
}
