export { reluGrad, tanhGrad } from './activationGradients.js';
export { BN_EPSILON, batchNormTraining } from './batchNorm.js';
export { type Activation, activate, convLayer, denseLayer } from './fusedLayers.js';
export * from './kernelNames.js';
export { logLoss } from './logLoss.js';
import './registerOpGradients.js';
