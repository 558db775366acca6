import type { Importer } from '../selectBackend.js';
import { NATIVE_ADDON_SPEC, type NativeAddon, importNativeAddon } from './addon.js';

/** Maps a file shared (the native addon's mapShared). */
export type MapShared = NativeAddon['mapShared'];

/** The addon's mapShared where the addon loads here, else why not: shared memory then stays off. */
export async function loadMapShared(importer: Importer = (spec) => import(spec)): Promise<{ map: MapShared } | { why: string }> {
  const imported = await importNativeAddon(importer);
  if ('why' in imported) return imported;
  const { mapShared } = imported.addon;
  return typeof mapShared === 'function' ? { map: mapShared } : { why: `the module at ${NATIVE_ADDON_SPEC} cannot map memory` };
}

/** What the `shared memory` log lines say of loadMapShared's answer. */
export function sharedMemoryStatus(loaded: { map: MapShared } | { why: string }): { available: boolean; why?: string } {
  return 'map' in loaded ? { available: true } : { available: false, why: loaded.why };
}
