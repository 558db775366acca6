export * from './batchNormStats.js';
export * from './export.js';
export * from './params.js';
export * from './phaseGradients.js';
export * from './preset.js';
export * from './presets.js';
export * from './sampler.js';
export * from './trainer.js';
