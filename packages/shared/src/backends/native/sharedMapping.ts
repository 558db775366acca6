import type { Importer } from '../selectBackend.js';
import { NATIVE_ADDON_SPEC, type NativeAddon, importNativeAddon } from './addon.js';

const CALLS = ['mapShared', 'ring', 'waitRing', 'watchRing'] as const;

/** What shared memory takes from the native addon: mapping a file, and the doorbells that announce frames in it. */
export type SharedMemoryCalls = Pick<NativeAddon, (typeof CALLS)[number]>;

/** The addon's shared-memory calls where they work here (Linux, the addon loads), else why not: shared memory then stays off. */
export async function loadSharedMemory(
  importer: Importer = (spec) => import(spec),
  platform: string = process.platform,
): Promise<{ calls: SharedMemoryCalls } | { why: string }> {
  // Doorbells are futexes.
  if (platform !== 'linux') return { why: `shared memory needs Linux (this is ${platform})` };
  const imported = await importNativeAddon(importer);
  if ('why' in imported) return imported;
  const { addon } = imported;
  if (CALLS.some((name) => typeof addon[name] !== 'function')) return { why: `the module at ${NATIVE_ADDON_SPEC} cannot map memory` };
  return { calls: addon as SharedMemoryCalls };
}

/** What the `shared memory` log lines say of loadSharedMemory's answer. */
export function sharedMemoryStatus(loaded: { calls: SharedMemoryCalls } | { why: string }): { available: boolean; why?: string } {
  return 'calls' in loaded ? { available: true } : { available: false, why: loaded.why };
}
