export * from './idx.js';
export * from './mnist.js';
export * from './rng.js';
export * from './shard.js';
