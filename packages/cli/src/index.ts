export { buildProgram, main } from './main.js';
export { startLocalCluster, threadsPerLocalWorker } from './localCluster.js';
export { sampleGenerator } from './sample.js';
export { NODE_FLAGS, ganfleetArgv } from './nodeFlags.js';
