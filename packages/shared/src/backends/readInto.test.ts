import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { probeNativeAddon } from './native/addon.js';
import { readInto } from './readInto.js';
import { selectBackend } from './selectBackend.js';

/*
 * readInto against data(), the read every backend has, on each backend this machine can run: a
 * tensor an op computed (so it lives where the backend keeps its results), read into a view in
 * the middle of a larger buffer whose other bytes must stay untouched.
 */
// `native` needs ganfleet's addon, which `npm ci` builds only where a C++ compiler is: skipped, and said so, elsewhere.
const probe = await probeNativeAddon();
if (!probe.available) console.warn(`readInto on native: SKIPPED, the addon is not built here: ${probe.why}`);
const backends = probe.available ? (['cpu', 'wasm', 'native'] as const) : (['cpu', 'wasm'] as const);

describe.each(backends)('readInto on %s', (backend) => {
  afterAll(async () => void (await selectBackend('cpu')));

  it('copies the values data() reads, into the target only', async () => {
    await selectBackend(backend);
    // Allocating more heap between the tensors: the wasm memory may grow, and with it change buffer.
    const tensors = [7, 1 << 18, 33].map((n) => tf.tidy(() => tf.sin(tf.range(0, n, 1, 'float32')).mul(3)));
    try {
      for (const t of tensors) {
        const buffer = new Float32Array(t.size + 8).fill(-7);
        const target = buffer.subarray(4, 4 + t.size);
        await readInto(t, target);
        expect(target).toEqual(await t.data());
        expect([...buffer.subarray(0, 4), ...buffer.subarray(4 + t.size)]).toEqual(new Array(8).fill(-7));
      }
    } finally {
      tf.dispose(tensors);
    }
  });

  it('refuses a target of another size, and a tensor that is not float32', async () => {
    await selectBackend(backend);
    const t = tf.ones([4]);
    const ints = tf.ones([4], 'int32');
    await expect(readInto(t, new Float32Array(5))).rejects.toThrow(/4 values into 5/);
    await expect(readInto(ints, new Float32Array(4))).rejects.toThrow(/int32/);
    tf.dispose([t, ints]);
  });
});
