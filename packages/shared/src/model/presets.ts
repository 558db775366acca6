import { GanError } from '../wire/index.js';
import { mlpPreset } from './mlp.js';
import type { ModelPreset } from './preset.js';
import { convPreset } from './conv.js';

/** The preset registry: adding an architecture is one file plus one line here. */
const PRESETS: ReadonlyMap<string, ModelPreset> = new Map([convPreset, mlpPreset].map((p) => [p.name, p]));

export const presetNames = (): string[] => [...PRESETS.keys()];

export function getPreset(name: string): ModelPreset {
  const preset = PRESETS.get(name);
  if (!preset) throw new GanError('CONFIG_INVALID', `unknown model preset "${name}" (known: ${presetNames().join(', ')})`);
  return preset;
}
