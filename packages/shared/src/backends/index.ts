export { readInto } from './readInto.js';
export { type BackendChoice, type BackendInfo, type BackendLog, type Importer, selectBackend } from './selectBackend.js';
export { type WebGpuOptions, type WebGpuSummary, activateWebGpu, describeWebGpu } from './webgpu/activateWebGpu.js';
export { type WebGpuKernelSet, useWebGpuKernels } from './webgpu/webgpuKernels.js';
export { recordPrograms } from './webgpu/program.js';
export { MAX_NATIVE_THREADS, NATIVE_ADDON_SPEC, nativeThreads, probeNativeAddon, setNativeThreads } from './native/addon.js';
export { nativeUpdateLoops, useFastestUpdateLoops } from './native/nativeUpdateLoops.js';
export { type SharedMemoryCalls, loadSharedMemory, sharedMemoryStatus } from './native/sharedMapping.js';
