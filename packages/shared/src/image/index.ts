export * from './pngGrid.js';
