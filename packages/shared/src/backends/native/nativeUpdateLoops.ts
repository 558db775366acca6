import { type UpdateLoops, jsUpdateLoops, useUpdateLoops } from '../../model/updateLoops.js';
import type { Importer } from '../selectBackend.js';
import { NATIVE_ADDON_SPEC, type NativeAddon, importNativeAddon } from './addon.js';

/** The update loops of the native addon. */
export function nativeUpdateLoops(addon: NativeAddon): UpdateLoops {
  return {
    name: `native (${addon.isa()})`,
    adam: (c, p, g, m, v, from, to, copy) => addon.adamUpdate({ ...c, p, g, m, v, from, to, ...(copy ? { copy } : {}) }),
    emaFold: (avg, p, beta, from, to) => addon.emaFold({ avg, p, beta, from, to }),
    meanOfTwo: (out, x0, w0, x1, w1, total) => addon.meanOfTwo({ out, x0, w0, x1, w1, total }),
    sumOfSquares: (values, into) => addon.sumOfSquares(values, into),
    sumTerms: (terms, acc, mean) => addon.sumTerms({ terms, acc, out: mean?.out ?? null, total: mean?.total ?? 1 }),
  };
}

/**
 * Puts the native addon's update loops in use in this thread when it loads, else keeps the
 * JavaScript ones; either way the results are the same. Returns the loops' name, and why not
 * the native ones when it is not them.
 */
export async function useFastestUpdateLoops(importer: Importer = (spec) => import(spec)): Promise<{ loops: string; why?: string }> {
  const imported = await importNativeAddon(importer);
  if ('addon' in imported) {
    const { addon } = imported;
    if (
      typeof addon.adamUpdate === 'function' &&
      typeof addon.emaFold === 'function' &&
      typeof addon.meanOfTwo === 'function' &&
      typeof addon.sumTerms === 'function' &&
      typeof addon.sumOfSquares === 'function'
    ) {
      const loops = nativeUpdateLoops(addon as NativeAddon);
      useUpdateLoops(loops);
      return { loops: loops.name };
    }
  }
  useUpdateLoops(jsUpdateLoops);
  return { loops: jsUpdateLoops.name, why: 'why' in imported ? imported.why : `the module at ${NATIVE_ADDON_SPEC} has no update loops` };
}
