export * from './adam.js';
export * from './paramStore.js';
export * from './runOutputs.js';
export * from './schedule.js';
export * from './trainInProcess.js';
export * from './trainingRun.js';
export * from './server.js';
export * from './workerConnection.js';
