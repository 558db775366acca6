import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GanError } from '../errors.js';
import { type BackendInfo, type Importer, selectBackend } from './selectBackend.js';

/*
 * tfjs keeps the active backend and the gradient registry in process-global state, so every test
 * restores the backend and removes the fake 'tensorflow' one. The tests that must not register the
 * wasm gradient patches run before the first one that selects wasm (vitest keeps file order).
 */

const GPU = '@tensorflow/tfjs-node-gpu';
const NODE = '@tensorflow/tfjs-node';
const WASM = '@tensorflow/tfjs-backend-wasm';

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

  it("'webgpu' reports a present adapter as arriving in a later step, and a missing one", async () => {
    const withAdapter = importer({ webgpu: () => ({ create: () => ({ requestAdapter: async () => ({}) }) }) });
    await expect(selectBackend('webgpu', undefined, withAdapter.load)).rejects.toThrow(/webgpu: .*adapter is available.*later step/);
    const noAdapter = importer({ webgpu: () => ({ create: () => ({ requestAdapter: async () => null }) }) });
    await expect(selectBackend('webgpu', undefined, noAdapter.load)).rejects.toThrow(/webgpu: no WebGPU adapter found/);
  });

  it("'cpu' loads nothing", async () => {
    const imp = importer({});
    const info = await selectBackend('cpu', undefined, imp.load);
    expect(info).toMatchObject({ name: 'cpu', requested: 'cpu', skipped: [] });
    expect(imp.calls).toEqual([]);
  });

  it('auto falls back to cpu when wasm cannot load, without patching gradients', async () => {
    const imp = importer({});
    const info = await selectBackend('auto', undefined, imp.load);
    expect(info.name).toBe('cpu');
    expect(names(info)).toEqual([GPU, NODE, 'webgpu', 'wasm']);
    expect(info.skipped[3]?.why).toBe(`${WASM} is not installed`);
    expect(tf.getGradient(tf.Conv2D)).toBe(stockConv2DGrad);
  });

  // From here on the wasm gradient patches are registered in this process.
  it('auto without native TensorFlow or WebGPU picks patched wasm', async () => {
    const imp = importer({ [WASM]: realWasm });
    const info = await selectBackend('auto', undefined, imp.load);
    expect(info.name).toBe('wasm');
    expect(info.reason).toMatch(/SIMD, single thread/);
    expect(info.skipped).toEqual([
      { name: GPU, why: `${GPU} is not installed` },
      { name: NODE, why: `${NODE} is not installed` },
      { name: 'webgpu', why: 'webgpu is not installed' },
    ]);
    expect(imp.calls).toEqual([GPU, NODE, 'webgpu', WASM]);
    expect(tf.getBackend()).toBe('wasm');
    expect(tf.getGradient(tf.Conv2D)).not.toBe(stockConv2DGrad);
    // A conv filter gradient needs the patches on wasm (it has no Conv2DBackpropFilter).
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
});
