export { conv2dTransposeFast, useFastConvTranspose } from './fastOps.js';
export { type BackendChoice, type BackendInfo, type BackendLog, selectBackend } from './selectBackend.js';
export { registerWasmGradientPatches } from './wasmPatches.js';
