import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GanError } from '../wire/index.js';
import { RELU_GRAD } from '../ops/index.js';
import { NATIVE_ADDON_SPEC, setNativeThreads } from './native/addon.js';
import { type BackendInfo, type Importer, selectBackend } from './selectBackend.js';

/*
 * tfjs keeps the active backend and the gradient registry in process-global state, so every test
 * restores the backend and removes the fake 'tensorflow' one. The tests that must not see
 * ganfleet's wasm kernels run before the first one that selects wasm (vitest keeps file order).
 */

const GPU = '@tensorflow/tfjs-node-gpu';
const NODE = '@tensorflow/tfjs-node';
const WASM = '@tensorflow/tfjs-backend-wasm';
const TFJS_WEBGPU = '@tensorflow/tfjs-backend-webgpu';

function notInstalled(spec: string): Error {
  return Object.assign(new Error(`Cannot find package '${spec}' imported from /somewhere/selectBackend.js`), { code: 'ERR_MODULE_NOT_FOUND' });
}

/** What importing tfjs-node does, simulated with the cpu backend and kernels under the name 'tensorflow'. */
function registerFakeTensorflow(): void {
  const cpuFactory = tf.findBackendFactory('cpu');
  if (!cpuFactory) throw new Error('cpu backend missing');
  tf.registerBackend('tensorflow', cpuFactory);
  for (const kernel of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...kernel, backendName: 'tensorflow' });
}

function removeFakeTensorflow(): void {
  if (!tf.findBackendFactory('tensorflow')) return;
  tf.removeBackend('tensorflow');
  for (const kernel of tf.getKernelsForBackend('tensorflow')) tf.unregisterKernel(kernel.kernelName, 'tensorflow');
}

/** Adapter limits that activateWebGpu raises the device to; the fake adapter also has one it must leave alone. */
const RAISED = {
  maxStorageBuffersPerShaderStage: 16,
  maxStorageBufferBindingSize: 2 ** 31,
  maxBufferSize: 2 ** 32,
  maxComputeWorkgroupStorageSize: 49152,
  maxComputeInvocationsPerWorkgroup: 1024,
  maxComputeWorkgroupSizeX: 1024,
  maxComputeWorkgroupSizeY: 1024,
  maxComputeWorkgroupSizeZ: 64,
  maxComputeWorkgroupsPerDimension: 65535,
};

type Listener = (event: { error: { message: string } }) => void;

/** The npm 'webgpu' package (Dawn) with one fake adapter, or none; records device requests and listeners. */
function fakeDawn(opts: { adapter?: null; fallback?: boolean }) {
  const info = { vendor: 'fake', architecture: 'test', device: 'fake-9000', description: 'Fake GPU 9000', isFallbackAdapter: opts.fallback ?? false };
  const deviceRequests: unknown[] = [];
  const listeners = new Map<string, Listener>();
  const device = {
    limits: RAISED,
    lost: new Promise(() => undefined),
    addEventListener: (type: string, fn: Listener) => listeners.set(type, fn),
  };
  const adapter = {
    info,
    limits: { ...RAISED, maxTextureDimension2D: 8192 },
    features: new Set(['timestamp-query', 'shader-f16']),
    requestDevice: async (descriptor: unknown) => {
      deviceRequests.push(descriptor);
      return device;
    },
  };
  const gpu = { requestAdapter: async () => (opts.adapter === null ? null : adapter) };
  return { module: { create: () => gpu, globals: {} }, gpu, info, device, deviceRequests, listeners };
}

/** What importing tfjs-backend-webgpu does, simulated: 'webgpu' kernels (cpu's) and a WebGPUBackend class (building a cpu backend). */
function fakeTfjsWebgpu() {
  const cpuFactory = tf.findBackendFactory('cpu');
  if (!cpuFactory) throw new Error('cpu backend missing');
  const constructed: unknown[] = [];
  function WebGPUBackend(device: unknown, info: unknown) {
    constructed.push({ device, info });
    return cpuFactory?.();
  }
  return {
    constructed,
    module: () => {
      for (const kernel of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...kernel, backendName: 'webgpu' });
      return { WebGPUBackend };
    },
  };
}

function removeFakeWebgpu(): void {
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  for (const kernel of tf.getKernelsForBackend('webgpu')) tf.unregisterKernel(kernel.kernelName, 'webgpu');
}

/** An importer where `present` modules load (fakes, or the real wasm package) and the rest are missing. */
function importer(present: Record<string, () => unknown>): { load: Importer; calls: string[] } {
  const calls: string[] = [];
  const load: Importer = async (spec) => {
    calls.push(spec);
    const make = present[spec];
    if (!make) throw notInstalled(spec);
    return make();
  };
  return { load, calls };
}

const realWasm = (): Promise<unknown> => import('@tensorflow/tfjs-backend-wasm');

/** A stand-in for the native addon's module: what selecting it calls, recorded (its kernels are not run here). */
function fakeAddon() {
  const threadCalls: number[] = [];
  const fail = (): never => {
    throw new Error('not in this test');
  };
  const module = {
    isa: () => 'avx2',
    threads: () => threadCalls.at(-1) ?? 1,
    setThreads: (n: number) => void threadCalls.push(n),
    sgemm: fail,
    conv2d: fail,
    conv2dBackpropInput: fail,
    conv2dBackpropFilter: fail,
    conv2dOutputSize: fail,
  };
  return { module, threadCalls };
}

/** What importing the addon's module throws when its binary was not built (packages/shared/native/index.js). */
const ADDON_MISSING =
  "ganfleet native addon unavailable (/app/packages/shared/native/build/Release/ganfleet_native.node): build it with 'node packages/shared/native/build.mjs'";

let initialBackend: string;
let stockConv2DGrad: tf.GradConfig;

beforeAll(async () => {
  await tf.setBackend('cpu');
  initialBackend = tf.getBackend();
  stockConv2DGrad = tf.getGradient(tf.Conv2D);
});

afterEach(async () => {
  await tf.setBackend(initialBackend);
  removeFakeTensorflow();
  removeFakeWebgpu();
});

const names = (info: BackendInfo): string[] => info.skipped.map((s) => s.name);

describe('selectBackend', () => {
  it('auto prefers tfjs-node-gpu and tries nothing after it', async () => {
    const imp = importer({ [GPU]: registerFakeTensorflow, [NODE]: registerFakeTensorflow });
    const info = await selectBackend('auto', undefined, imp.load);
    expect(info).toMatchObject({ name: 'tensorflow', requested: 'auto', skipped: [] });
    expect(info.reason).toContain(GPU);
    expect(imp.calls).toEqual([GPU]);
    expect(tf.getBackend()).toBe('tensorflow');
  });

  it('auto falls back to tfjs-node, saying why tfjs-node-gpu was skipped', async () => {
    const imp = importer({ [NODE]: registerFakeTensorflow });
    const logged: [string, object | undefined][] = [];
    const info = await selectBackend('auto', (msg, fields) => logged.push([msg, fields]), imp.load);
    expect(info.name).toBe('tensorflow');
    expect(info.reason).toContain(NODE);
    expect(info.skipped).toEqual([{ name: GPU, why: `${GPU} is not installed` }]);
    expect(imp.calls).toEqual([GPU, NODE]);
    expect(logged.map(([msg]) => msg)).toEqual(['backend skipped', 'backend selected']);
    expect(tf.getGradient(tf.Conv2D)).toBe(stockConv2DGrad);
  });

  it('skips a package that loads but registers no backend', async () => {
    const imp = importer({ [GPU]: () => ({}), [NODE]: registerFakeTensorflow });
    const info = await selectBackend('tensorflow', undefined, imp.load);
    expect(info.name).toBe('tensorflow');
    expect(info.skipped).toEqual([{ name: GPU, why: "no backend 'tensorflow' was registered" }]);
  });

  it("'tensorflow' without either package fails with both reasons", async () => {
    const imp = importer({});
    const err: unknown = await selectBackend('tensorflow', undefined, imp.load).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GanError);
    expect((err as GanError).code).toBe('BACKEND_UNAVAILABLE');
    expect((err as GanError).message).toContain(`${GPU}: ${GPU} is not installed; ${NODE}: ${NODE} is not installed`);
    expect(imp.calls).toEqual([GPU, NODE]);
  });

  it("'webgpu' says why when there is no adapter or no tfjs webgpu package", async () => {
    const noAdapter = importer({ webgpu: () => fakeDawn({ adapter: null }).module });
    await expect(selectBackend('webgpu', undefined, noAdapter.load)).rejects.toThrow(/webgpu: no WebGPU adapter found: Dawn needs the Vulkan loader/);
    expect(noAdapter.calls).toEqual(['webgpu']);
    const noTfjs = importer({ webgpu: () => fakeDawn({}).module });
    await expect(selectBackend('webgpu', undefined, noTfjs.load)).rejects.toThrow(`webgpu: ${TFJS_WEBGPU} is not installed`);
    expect(tf.getBackend()).toBe('cpu');
  });

  it("'webgpu' builds the backend on a device with the adapter's limits and fails loudly on device errors", async () => {
    const dawn = fakeDawn({});
    const tfjsWebgpu = fakeTfjsWebgpu();
    const imp = importer({ webgpu: () => dawn.module, [TFJS_WEBGPU]: tfjsWebgpu.module });
    const info = await selectBackend('webgpu', undefined, imp.load);
    expect(info).toMatchObject({ name: 'webgpu', requested: 'webgpu', skipped: [] });
    expect(info.reason).toBe("WebGPU (Dawn over Vulkan) on GPU Fake GPU 9000, 16 storage buffers per shader stage, ganfleet's kernels");
    expect(imp.calls).toEqual(['webgpu', TFJS_WEBGPU]);
    // Every raised limit at the adapter's value (never the spec's default of 8 storage buffers), nothing else.
    expect(dawn.deviceRequests).toEqual([{ requiredLimits: RAISED, requiredFeatures: ['timestamp-query'] }]);
    expect(tfjsWebgpu.constructed).toEqual([{ device: dawn.device, info: dawn.info }]);
    expect((globalThis as unknown as { navigator: { gpu: unknown } }).navigator.gpu).toBe(dawn.gpu);
    const onError = dawn.listeners.get('uncapturederror');
    expect(() => onError?.({ error: { message: 'The number of storage buffers (10) exceeds the limit (8)' } })).toThrow(
      /WebGPU error, stopping \(results would be wrong\): The number of storage buffers \(10\)/,
    );

    // Selecting it again reuses that device: nothing imported, no second device.
    await tf.setBackend('cpu');
    const again = importer({});
    expect((await selectBackend('webgpu', undefined, again.load)).name).toBe('webgpu');
    expect(again.calls).toEqual([]);
    expect(dawn.deviceRequests).toHaveLength(1);
  });

  it('auto passes over a software adapter, which an explicit webgpu accepts', async () => {
    const dawn = fakeDawn({ fallback: true });
    const imp = importer({ webgpu: () => dawn.module, [TFJS_WEBGPU]: fakeTfjsWebgpu().module });
    const auto = await selectBackend('auto', undefined, imp.load);
    expect(auto.name).toBe('cpu');
    expect(auto.skipped[2]).toEqual({
      name: 'webgpu',
      why: 'the WebGPU adapter is software rendering on the CPU (Fake GPU 9000); select webgpu explicitly to use it',
    });
    const explicit = await selectBackend('webgpu', undefined, imp.load);
    expect(explicit.reason).toMatch(/^WebGPU \(Dawn over Vulkan\) on software adapter Fake GPU 9000/);
  });

  it("'cpu' loads nothing", async () => {
    const imp = importer({});
    const info = await selectBackend('cpu', undefined, imp.load);
    expect(info).toMatchObject({ name: 'cpu', requested: 'cpu', skipped: [] });
    expect(imp.calls).toEqual([]);
  });

  it('auto falls back to cpu when wasm cannot load, leaving the gradients stock', async () => {
    const imp = importer({});
    const info = await selectBackend('auto', undefined, imp.load);
    expect(info.name).toBe('cpu');
    expect(names(info)).toEqual([GPU, NODE, 'webgpu', 'native', 'wasm']);
    expect(info.skipped[3]?.why).toBe(`${NATIVE_ADDON_SPEC} is not installed`);
    expect(info.skipped[4]?.why).toBe(`${WASM} is not installed`);
    expect(tf.getGradient(tf.Conv2D)).toBe(stockConv2DGrad);
  });

  // From here on ganfleet's wasm kernels are registered in this process.
  it("auto without native TensorFlow or WebGPU picks wasm, with ganfleet's kernels", async () => {
    const imp = importer({ [WASM]: realWasm });
    const info = await selectBackend('auto', undefined, imp.load);
    expect(info.name).toBe('wasm');
    expect(info.reason).toMatch(/SIMD, single thread/);
    expect(info.skipped).toEqual([
      { name: GPU, why: `${GPU} is not installed` },
      { name: NODE, why: `${NODE} is not installed` },
      { name: 'webgpu', why: 'webgpu is not installed' },
      { name: 'native', why: `${NATIVE_ADDON_SPEC} is not installed` },
    ]);
    expect(imp.calls).toEqual([GPU, NODE, 'webgpu', NATIVE_ADDON_SPEC, WASM]);
    expect(tf.getBackend()).toBe('wasm');
    // The stock gradient runs, on a filter-gradient kernel that only ganfleet gives wasm.
    expect(tf.getGradient(tf.Conv2D)).toBe(stockConv2DGrad);
    expect(tf.getKernel(tf.Conv2DBackpropFilter, 'wasm')).toBeDefined();
    const grad = tf.tidy(() =>
      tf
        .grad((f: tf.Tensor) => tf.sum(tf.conv2d(tf.ones([1, 4, 4, 1]) as tf.Tensor4D, f as tf.Tensor4D, 1, 'valid')))(tf.ones([3, 3, 1, 1]))
        .dataSync(),
    );
    expect(Array.from(grad)).toEqual(new Array(9).fill(4));
  });

  it("'wasm' can be selected again", async () => {
    const info = await selectBackend('wasm', undefined, importer({ [WASM]: realWasm }).load);
    expect(info).toMatchObject({ name: 'wasm', requested: 'wasm', skipped: [] });
  });

  it('auto picks native where the addon loads: wasm with its kernels, sized by setNativeThreads', async () => {
    const addon = fakeAddon();
    setNativeThreads(3);
    const imp = importer({ [WASM]: realWasm, [NATIVE_ADDON_SPEC]: () => addon.module });
    const logged: [string, object | undefined][] = [];
    const info = await selectBackend('auto', (msg, fields) => logged.push([msg, fields]), imp.load);
    expect(info).toMatchObject({ name: 'native', requested: 'auto' });
    expect(info.reason).toMatch(
      /^ganfleet's native C\+\+ kernels \(avx2, 3 threads\) for conv and matmul, on WebAssembly\/XNNPACK \((no )?SIMD\) for the rest$/,
    );
    expect(names(info)).toEqual([GPU, NODE, 'webgpu']);
    expect(imp.calls).toEqual([GPU, NODE, 'webgpu', NATIVE_ADDON_SPEC, WASM]);
    expect(tf.getBackend()).toBe('wasm');
    expect(addon.threadCalls).toEqual([3]);
    // Its kernels stand in for wasm's (which have a setup function) and make the layers fused.
    expect(tf.getKernel(tf.FusedConv2D, 'wasm')?.setupFunc).toBeUndefined();
    expect(tf.getKernel(RELU_GRAD, 'wasm')).toBeDefined();
    setNativeThreads(2);
    expect(addon.threadCalls).toEqual([3, 2]);
    expect(logged.at(-1)?.[0]).toBe('backend selected');
    setNativeThreads(1);
  });

  it('auto falls back to wasm when the addon is not built, saying why, and takes the native kernels off wasm', async () => {
    const imp = importer({
      [WASM]: realWasm,
      [NATIVE_ADDON_SPEC]: () => {
        throw new Error(ADDON_MISSING);
      },
    });
    const logged: [string, object | undefined][] = [];
    const info = await selectBackend('auto', (msg, fields) => logged.push([msg, fields]), imp.load);
    expect(info).toMatchObject({ name: 'wasm', requested: 'auto' });
    expect(info.skipped[3]).toEqual({ name: 'native', why: ADDON_MISSING });
    expect(logged).toContainEqual(['backend skipped', { backend: 'native', why: ADDON_MISSING }]);
    expect(tf.getKernel(RELU_GRAD, 'wasm')).toBeUndefined();
    expect(tf.getKernel(tf.FusedConv2D, 'wasm')?.setupFunc).toBeDefined();
    // Asked for explicitly, it fails with that reason.
    await expect(selectBackend('native', undefined, imp.load)).rejects.toThrow(`no usable backend for 'native' (native: ${ADDON_MISSING})`);
  });

  it("'native' refuses a module that is not the addon", async () => {
    const imp = importer({ [WASM]: realWasm, [NATIVE_ADDON_SPEC]: () => ({ isa: () => 'avx2' }) });
    await expect(selectBackend('native', undefined, imp.load)).rejects.toThrow(/the native addon module lacks threads, setThreads, sgemm/);
  });
});
