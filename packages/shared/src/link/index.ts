export * from './upstream.js';
export * from './frameJoiner.js';
export * from './sendFragmented.js';
export * from './sharedRegion.js';
