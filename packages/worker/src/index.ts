export * from './client.js';
export * from './fetchGenerator.js';
