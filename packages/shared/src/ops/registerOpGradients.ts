import * as tf from '@tensorflow/tfjs';
import { activationGradients } from './activationGradients.js';
import { fusedLayerGradients } from './fusedLayers.js';

/*
 * Registers, on import (as tfjs registers its own), the gradients ganfleet's ops rely on: ReLU's
 * and tanh's through their kernels where present, and lazy ones for the fused layer kernels.
 * tfjs's gradient registry is global and each falls back to stock ops, so once per process serves
 * every backend, however it was activated.
 */
for (const config of [...activationGradients, ...fusedLayerGradients]) tf.registerGradient(config);
