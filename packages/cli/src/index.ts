export { buildProgram, main } from './main.js';
export { trainLocalCluster } from './localCluster.js';
export { sampleGenerator } from './sample.js';
