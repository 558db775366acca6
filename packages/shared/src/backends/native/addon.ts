import type * as Addon from '../../../native/index.js';
import type { Importer } from '../selectBackend.js';

/*
 * Loading ganfleet's native addon (packages/shared/native: C++ GEMM and NHWC conv kernels, built
 * by `npm ci` where a compiler exists) and sizing its thread pool. The addon lives outside src/,
 * three directories above this file both as TypeScript (src/backends/native/, under vitest) and
 * as JavaScript (dist/backends/native/, at run time); its module throws when the binary is missing.
 */

export type NativeAddon = typeof Addon;

/** The addon's entry module, for the importer (a file URL, resolved from this module). */
export const NATIVE_ADDON_SPEC = new URL('../../../native/index.js', import.meta.url).href;

/** What the kernels call; a module without them is not the addon this code was written for. */
const REQUIRED = ['isa', 'threads', 'setThreads', 'sgemm', 'conv2d', 'conv2dBackpropInput', 'conv2dBackpropFilter'] as const;

/** The addon's own limit on a pool. */
export const MAX_NATIVE_THREADS = 256;

let loaded: NativeAddon | undefined;
let wantedThreads = 1;

/** Imports the addon (throws saying why it cannot be used) and applies the thread count set so far. */
export async function loadNativeAddon(importer: Importer): Promise<NativeAddon> {
  const mod = (await importer(NATIVE_ADDON_SPEC)) as Partial<Record<string, unknown>>;
  const missing = REQUIRED.filter((name) => typeof mod[name] !== 'function');
  if (missing.length > 0) throw new Error(`the native addon module lacks ${missing.join(', ')} (${NATIVE_ADDON_SPEC})`);
  const addon = mod as unknown as NativeAddon;
  addon.setThreads(wantedThreads);
  loaded = addon;
  return addon;
}

/**
 * Threads of the native kernels in this thread (main or worker_thread): the caller plus n - 1
 * pool threads. Applies now if the addon is loaded, else when it is. Results do not depend on it.
 */
export function setNativeThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_NATIVE_THREADS)
    throw new RangeError(`native threads: expected an integer in [1, ${MAX_NATIVE_THREADS}], got ${n}`);
  wantedThreads = n;
  loaded?.setThreads(n);
}

/** The thread count the native kernels use (or will use once loaded). */
export function nativeThreads(): number {
  return wantedThreads;
}

/**
 * The addon's module, its entry points still to be checked by the caller, or why it cannot be
 * imported (the error's first line): the one import behind the probe, the update loops and
 * shared memory.
 */
export async function importNativeAddon(importer: Importer = (spec) => import(spec)): Promise<{ addon: Partial<NativeAddon> } | { why: string }> {
  try {
    return { addon: (await importer(NATIVE_ADDON_SPEC)) as Partial<NativeAddon> };
  } catch (err) {
    return { why: err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err) };
  }
}

/** Whether the addon can be loaded here; why not when it cannot (for tests and diagnostics). */
export async function probeNativeAddon(
  importer: Importer = (spec) => import(spec),
): Promise<{ available: true; isa: string } | { available: false; why: string }> {
  const imported = await importNativeAddon(importer);
  if ('why' in imported) return { available: false, why: imported.why };
  const { isa } = imported.addon;
  if (typeof isa !== 'function') return { available: false, why: `the module at ${NATIVE_ADDON_SPEC} is not the addon` };
  return { available: true, isa: isa() };
}
