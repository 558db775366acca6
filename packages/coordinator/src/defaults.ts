/*
 * The defaults of a run that the CLI shows in its flags' help, in a module that imports nothing,
 * so that a command can describe its flags without loading TensorFlow.js (`@ganfleet/coordinator/defaults`).
 * runSettings (settings.ts) applies them.
 */

/** The presets a run can name; the model registry (shared/src/model/presets.ts) defines them, a test checks the two agree. */
export const PRESET_NAMES: readonly string[] = ['conv', 'mlp'];

/** The preset of a run that names none. */
export const DEFAULT_PRESET = 'mlp';

/**
 * The averaged generator spans about the last half of the G updates (the horizon), up to the
 * preset's decay cap (mlp ~10 000 updates; conv keeps no average). docs/quality.md has the measurements.
 */
export const EMA_HORIZON = 1 / 2;

/** G steps of `ganfleet train`'s run, the README's main command (~5 minutes on the 2-vCPU VM). */
export const TRAIN_STEPS = 6000;
