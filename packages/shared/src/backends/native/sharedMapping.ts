import type { Importer } from '../selectBackend.js';
import { NATIVE_ADDON_SPEC, type NativeAddon } from './addon.js';

/** Maps a file shared (the native addon's mapShared). */
export type MapShared = NativeAddon['mapShared'];

/** The addon's mapShared where the addon loads here, else why not: shared memory then stays off. */
export async function loadMapShared(importer: Importer = (spec) => import(spec)): Promise<{ map: MapShared } | { why: string }> {
  try {
    const addon = (await importer(NATIVE_ADDON_SPEC)) as Partial<NativeAddon>;
    if (typeof addon.mapShared === 'function') return { map: addon.mapShared };
    return { why: `the module at ${NATIVE_ADDON_SPEC} cannot map memory` };
  } catch (err) {
    return { why: err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err) };
  }
}
