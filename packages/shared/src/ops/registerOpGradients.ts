import * as tf from '@tensorflow/tfjs';
import { activationGradients } from './activationGradients.js';
import { fusedLayerGradients } from './fusedLayers.js';

let registered = false;

/**
 * Registers the gradients ganfleet's ops rely on: ReLU's and tanh's through their kernels where
 * present, and lazy ones for the fused layer kernels. tfjs's gradient registry is global and each
 * falls back to stock ops, so once per process serves every backend.
 */
export function registerOpGradients(): void {
  if (registered) return;
  registered = true;
  for (const config of [...activationGradients, ...fusedLayerGradients]) tf.registerGradient(config);
}
