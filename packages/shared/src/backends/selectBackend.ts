import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { GanError } from '../wire/index.js';
import { loadNativeAddon, nativeThreads } from './native/addon.js';
import { registerNativeKernels, unregisterNativeKernels } from './native/register.js';
import { registerWasmKernels } from './wasm/wasmKernels.js';
import { type WebGpuOptions, activateWebGpu, describeWebGpu } from './webgpu/activateWebGpu.js';

export type BackendChoice = 'auto' | 'tensorflow' | 'webgpu' | 'native' | 'wasm' | 'cpu';

export interface BackendInfo {
  /**
   * The active tfjs backend: 'tensorflow', 'webgpu', 'wasm' or 'cpu'; or 'native': the tfjs wasm
   * backend with ganfleet's native (C++) conv and matmul kernels registered for it.
   */
  name: string;
  requested: string;
  reason: string;
  /** Candidates tried before the chosen one, in order, with why each was passed over. */
  skipped: { name: string; why: string }[];
}

export type BackendLog = (msg: string, fields?: object) => void;
/** Loads a module by specifier; injectable so tests can fake optional packages. */
export type Importer = (spec: string) => Promise<unknown>;

interface Candidate {
  name: string;
  /** What BackendInfo.name reports when this candidate is chosen; default: the active tfjs backend. */
  reports?: string;
  /** Makes this backend the active one and returns why it suits, or throws saying why not. */
  activate: (importer: Importer) => Promise<string>;
}

/** Runs one op so a registered-but-broken backend (no kernels, bad binary) counts as a failure. */
async function activateBackend(name: string): Promise<void> {
  if (!tf.findBackendFactory(name)) throw new Error(`no backend '${name}' was registered`);
  if (!(await tf.setBackend(name))) throw new Error(`backend '${name}' failed to initialise`);
  const out = tf.tidy(() => tf.add(tf.tensor1d([1, 2]), tf.scalar(1)).dataSync());
  if (out[0] !== 2 || out[1] !== 3) throw new Error(`backend '${name}' computed 1+[1,2] as [${out.join(',')}]`);
}

function nativeTensorflow(spec: string, what: string): Candidate {
  return {
    name: spec,
    activate: async (importer) => {
      // Importing registers the 'tensorflow' backend (into the shared, global tfjs engine).
      await importer(spec);
      await activateBackend('tensorflow');
      return `${what} (${spec})`;
    },
  };
}

function webgpu(options: WebGpuOptions): Candidate {
  return { name: 'webgpu', activate: async (importer) => describeWebGpu(await activateWebGpu(importer, options)) };
}

interface WasmModule {
  setWasmPaths: (prefix: string) => void;
}

/** Activates tfjs's wasm backend with ganfleet's kernels for it (and not the native ones); says whether it has SIMD. */
async function activateWasm(importer: Importer): Promise<{ simd: boolean }> {
  const mod = (await importer('@tensorflow/tfjs-backend-wasm')) as WasmModule;
  // The package entry point lies in dist/, beside the .wasm binaries.
  const entry = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm');
  mod.setWasmPaths(path.dirname(entry) + path.sep);
  // The threaded build needs web workers; in Node only the single-threaded one works.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  await activateBackend('wasm');
  unregisterNativeKernels();
  registerWasmKernels();
  return { simd: Boolean(simd) };
}

const wasm: Candidate = {
  name: 'wasm',
  activate: async (importer) => {
    const { simd } = await activateWasm(importer);
    return `WebAssembly/XNNPACK, ${simd ? 'SIMD' : 'no SIMD'}, single thread, with ganfleet's conv and matmul kernels`;
  },
};

/** wasm, with the conv and matmul kernels of ganfleet's native addon (packages/shared/native) over its own. */
const native: Candidate = {
  name: 'native',
  reports: 'native',
  activate: async (importer) => {
    // First the addon: without it there is nothing to add to wasm.
    const addon = await loadNativeAddon(importer);
    const { simd } = await activateWasm(importer);
    registerNativeKernels(addon);
    const threads = nativeThreads();
    return (
      `ganfleet's native C++ kernels (${addon.isa()}, ${threads} thread${threads === 1 ? '' : 's'}) for conv and matmul, ` +
      `on WebAssembly/XNNPACK (${simd ? 'SIMD' : 'no SIMD'}) for the rest`
    );
  },
};

const cpu: Candidate = {
  name: 'cpu',
  activate: async () => {
    await activateBackend('cpu');
    return 'pure-JavaScript fallback (very slow for conv models)';
  },
};

const tfjsNodeGpu = nativeTensorflow('@tensorflow/tfjs-node-gpu', 'native TensorFlow with CUDA');
const tfjsNode = nativeTensorflow('@tensorflow/tfjs-node', 'native TensorFlow on the CPU');

const CANDIDATES: Record<BackendChoice, Candidate[]> = {
  auto: [tfjsNodeGpu, tfjsNode, webgpu({ allowSoftwareAdapter: false }), native, wasm, cpu],
  tensorflow: [tfjsNodeGpu, tfjsNode],
  webgpu: [webgpu({ allowSoftwareAdapter: true })],
  native: [native],
  wasm: [wasm],
  cpu: [cpu],
};

function whyFailed(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const missing = /^Cannot find (package|module) '([^']+)'/.exec(message);
  if (missing && (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND')) return `${missing[2]} is not installed`;
  return message.split('\n')[0] ?? message;
}

const defaultImporter: Importer = (spec) => import(spec);

/**
 * Makes the best available backend for `choice` the active tfjs backend. 'auto' tries native
 * TensorFlow (GPU, then CPU), webgpu (on a hardware adapter), native (wasm with ganfleet's C++
 * kernels, where the addon is built), wasm, then cpu; an explicit choice only its own.
 * setNativeThreads() sizes the native kernels' thread pool.
 * Throws GanError BACKEND_UNAVAILABLE when nothing fits.
 */
export async function selectBackend(choice: BackendChoice, log?: BackendLog, importer: Importer = defaultImporter): Promise<BackendInfo> {
  const skipped: BackendInfo['skipped'] = [];
  for (const candidate of CANDIDATES[choice]) {
    try {
      const reason = await candidate.activate(importer);
      const info: BackendInfo = { name: candidate.reports ?? tf.getBackend(), requested: choice, reason, skipped };
      log?.('backend selected', info);
      return info;
    } catch (err) {
      const why = whyFailed(err);
      skipped.push({ name: candidate.name, why });
      log?.('backend skipped', { backend: candidate.name, why });
    }
  }
  const tried = skipped.map((s) => `${s.name}: ${s.why}`).join('; ');
  throw new GanError('BACKEND_UNAVAILABLE', `no usable backend for '${choice}' (${tried})`);
}
