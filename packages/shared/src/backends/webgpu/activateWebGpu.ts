import { tmpdir } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { GanError } from '../../wire/index.js';
import type { Importer } from '../selectBackend.js';
import { useWebGpuKernels } from './webgpuKernels.js';

/*
 * The tfjs 'webgpu' backend in Node, over Dawn's Node bindings (npm 'webgpu', a prebuilt
 * dawn.node that drives Vulkan). Both packages are optional dependencies, loaded through the
 * injectable importer. Only the parts of the WebGPU API used here are typed, structurally, so
 * that type-checking needs neither package.
 */

type Limits = Readonly<Record<string, number>>;

interface DawnAdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter?: boolean;
}

interface DawnDevice {
  addEventListener(type: 'uncapturederror', listener: (event: { error: { message: string } }) => void): void;
  lost: Promise<{ reason: string; message: string }>;
  limits: Limits;
}

interface DawnAdapter {
  info: DawnAdapterInfo;
  limits: Limits;
  features: { has(name: string): boolean };
  requestDevice(descriptor: { requiredLimits: Record<string, number>; requiredFeatures: string[] }): Promise<DawnDevice>;
}

interface DawnModule {
  create(flags: string[]): { requestAdapter(options: { powerPreference: 'high-performance' }): Promise<DawnAdapter | null> };
  /** GPUBufferUsage, GPUMapMode and the other constants a browser has as globals; the tfjs backend reads them from there. */
  globals: Record<string, unknown>;
}

interface TfjsWebGpuModule {
  WebGPUBackend: new (device: DawnDevice, adapterInfo: DawnAdapterInfo) => tf.KernelBackend;
}

/**
 * Device limits raised to what the adapter supports. WebGPU hands out a device with the spec's
 * defaults unless asked: tfjs's own registration raises the buffer and workgroup ones but not
 * the storage-buffer count (default 8), and a kernel binding more buffers fails pipeline
 * validation, after which its output is garbage rather than an exception.
 */
const RAISED_LIMITS = [
  'maxStorageBuffersPerShaderStage',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
] as const;

/** Features tfjs's own registration requests when offered: GPU-side timing for its profiler, and bgra8 storage textures. */
const OPTIONAL_FEATURES = ['timestamp-query', 'bgra8unorm-storage'];

export interface WebGpuSummary {
  adapter: DawnAdapterInfo;
  /** The limits in RAISED_LIMITS: as requested, then as the device reports them once it exists. */
  limits: Record<string, number>;
  features: string[];
}

export interface WebGpuOptions {
  /**
   * Accept a software adapter such as Mesa's lavapipe (Vulkan on the CPU). Automatic selection
   * refuses one, since wasm is the better use of the CPU; asking for webgpu explicitly accepts it.
   */
  allowSoftwareAdapter: boolean;
}

/** Our factories for the 'webgpu' backend, so a second activation reuses the device instead of re-registering. */
const registered = new WeakMap<object, WebGpuSummary>();

/**
 * Makes 'webgpu' the active tfjs backend on a device requested with the adapter's limits, or
 * throws saying why not (package missing, no adapter, software adapter refused, broken backend).
 * Once active in a process, later calls reuse the same device and import nothing.
 * From then on any uncaptured WebGPU error (validation, out of memory) or device loss throws
 * asynchronously, ending the process with the message: results computed past one are not trustworthy.
 */
export async function activateWebGpu(importer: Importer, options: WebGpuOptions): Promise<WebGpuSummary> {
  const factory = tf.findBackendFactory('webgpu');
  const summary = (factory && registered.get(factory)) ?? (await register(importer));
  if (summary.adapter.isFallbackAdapter === true && !options.allowSoftwareAdapter) {
    throw new Error(`the WebGPU adapter is software rendering on the CPU (${adapterName(summary.adapter)}); select webgpu explicitly to use it`);
  }
  if (!(await tf.setBackend('webgpu'))) throw new Error('the webgpu backend failed to initialise (see the warning above)');
  // data(), not dataSync(): a synchronous read needs OffscreenCanvas, which Node lacks.
  const t = tf.tidy(() => tf.add(tf.tensor1d([1, 2]), tf.scalar(1)));
  const out = await t.data().finally(() => t.dispose());
  if (out[0] !== 2 || out[1] !== 3) throw new Error(`backend 'webgpu' computed 1+[1,2] as [${Array.from(out).join(',')}]`);
  return summary;
}

/** One line for logs and BackendInfo.reason. */
export function describeWebGpu(s: WebGpuSummary): string {
  const kind = s.adapter.isFallbackAdapter ? 'software adapter' : 'GPU';
  return `WebGPU (Dawn over Vulkan) on ${kind} ${adapterName(s.adapter)}, ${s.limits.maxStorageBuffersPerShaderStage} storage buffers per shader stage, ganfleet's kernels`;
}

function adapterName(info: DawnAdapterInfo): string {
  return info.description || info.device || `${info.vendor} ${info.architecture}`;
}

async function register(importer: Importer): Promise<WebGpuSummary> {
  // Dawn's Vulkan/Wayland probing prints an error when this is unset (headless servers, containers).
  process.env.XDG_RUNTIME_DIR ??= tmpdir();
  const dawn = (await importer('webgpu')) as Partial<DawnModule>;
  if (typeof dawn.create !== 'function' || typeof dawn.globals !== 'object') throw new Error("package 'webgpu' has no create() and globals");
  const gpu = dawn.create([]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (adapter == null) {
    throw new Error(
      "no WebGPU adapter found: Dawn needs the Vulkan loader (libvulkan1) and a Vulkan driver (e.g. NVIDIA's; lavapipe only from Mesa newer than 22.3)",
    );
  }
  installGlobals(gpu, dawn.globals);
  // Imported only now: the package registers its own 'webgpu' backend at import time if navigator.gpu exists (replaced below).
  const { WebGPUBackend } = (await importer('@tensorflow/tfjs-backend-webgpu')) as TfjsWebGpuModule;
  if (typeof WebGPUBackend !== 'function') throw new Error("package '@tensorflow/tfjs-backend-webgpu' has no WebGPUBackend");
  useWebGpuKernels('ganfleet');

  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) {
    const value = adapter.limits[name];
    if (value !== undefined) requiredLimits[name] = value;
  }
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const summary: WebGpuSummary = { adapter: copyInfo(adapter.info), limits: { ...requiredLimits }, features: requiredFeatures };
  const factory = async (): Promise<tf.KernelBackend> => {
    const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
    failLoudly(device);
    for (const name of RAISED_LIMITS) if (device.limits[name] !== undefined) summary.limits[name] = device.limits[name];
    return new WebGPUBackend(device, adapter.info);
  };
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  // Priority as in tfjs's own registration; the kernels it registered for 'webgpu' stay.
  tf.registerBackend('webgpu', factory, 3);
  registered.set(factory, summary);
  return summary;
}

/** What the tfjs backend expects of a browser: navigator.gpu and the WebGPU constant objects. */
function installGlobals(gpu: unknown, globals: Record<string, unknown>): void {
  const g = globalThis as unknown as Record<string, unknown> & { navigator?: object };
  // Node 21+ has a navigator of its own (without gpu); Node 20 has none.
  if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
  else g.navigator = { gpu };
  for (const [name, value] of Object.entries(globals)) if (!(name in g)) g[name] = value;
}

function copyInfo(info: DawnAdapterInfo): DawnAdapterInfo {
  const { vendor, architecture, device, description, isFallbackAdapter } = info;
  return { vendor, architecture, device, description, ...(isFallbackAdapter === undefined ? {} : { isFallbackAdapter }) };
}

/**
 * WebGPU reports most failures only through events: a kernel whose pipeline fails validation
 * simply leaves its output unwritten, so training would go on with wrong numbers. Throwing from
 * the listener surfaces as an uncaught exception (EventTarget rethrows it), which ends the process.
 */
function failLoudly(device: DawnDevice): void {
  device.addEventListener('uncapturederror', (event) => {
    throw new GanError('BACKEND_UNAVAILABLE', `WebGPU error, stopping (results would be wrong): ${event.error.message}`);
  });
  void device.lost.then((info) => {
    if (info.reason !== 'destroyed') throw new GanError('BACKEND_UNAVAILABLE', `WebGPU device lost: ${info.message}`);
  });
}
