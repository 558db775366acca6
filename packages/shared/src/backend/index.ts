export { conv2dTransposeFast, useFastConvTranspose } from './fastOps.js';
export { type BackendChoice, type BackendInfo, type BackendLog, type Importer, selectBackend } from './selectBackend.js';
export { registerWasmGradientPatches } from './wasmPatches.js';
export { type WebGpuOptions, type WebGpuSummary, activateWebGpu, describeWebGpu } from './webgpu.js';
export { type WebGpuKernelSet, useWebGpuKernels } from './webgpuKernels.js';
export { recordPrograms } from './webgpuProgram.js';
