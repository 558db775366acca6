export * from './client.js';
export * from './trainer.js';
export * from './fetchGenerator.js';
