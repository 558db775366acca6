export * from './client.js';
export * from './fetchGenerator.js';
export * from './trainer.js';
export * from './trainerThread.js';
