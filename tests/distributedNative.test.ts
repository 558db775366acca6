import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeNativeAddon, selectBackend } from '@ganfleet/shared/backends';
import { expectDistributedEqualsInProcess } from './helpers/equivalence.js';

const nativeAddon = await probeNativeAddon();
if (!nativeAddon.available) console.warn(`distributed training on native: SKIPPED, the addon is not built here (${nativeAddon.why})`);

/**
 * The same on the native backend (wasm with the addon's kernels), where the addon is built (CI
 * builds it): the reference runs the kernels with 1 thread in this process, the workers with
 * their default (the machine's cores) or 3 threads; results must not depend on the thread count.
 */
describe.skipIf(!nativeAddon.available)(
  `distributed training equals in-process gradient accumulation on native${nativeAddon.available ? '' : ` (SKIPPED: ${nativeAddon.why})`}`,
  () => {
    beforeAll(async () => {
      const info = await selectBackend('native');
      expect(info.name).toBe('native');
    });
    afterAll(async () => {
      await selectBackend('cpu');
    });

    it('conv, 2 workers (default threads): parameters, Adam state and the averaged generator', async () => {
      await expectDistributedEqualsInProcess('conv', 4, 2, 'native');
    });

    it('mlp, 1 worker with 3 threads: parameters, Adam state and the averaged generator', async () => {
      await expectDistributedEqualsInProcess('mlp', 16, 1, 'native', ['--threads', '3']);
    });
  },
);
