import * as tf from '@tensorflow/tfjs';

/** What readInto needs of tfjs's wasm backend (ganfleet's `native` backend is that backend with its own kernels). */
interface WasmHeap {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
}

/**
 * Copies a float32 tensor's values into `target`. On the wasm and native backends they are copied
 * straight out of the wasm heap: `data()` would first copy them into a fresh array, an allocation
 * and a pass over them per tensor and round. Elsewhere through `data()`.
 */
export async function readInto(t: tf.Tensor, target: Float32Array): Promise<void> {
  if (t.dtype !== 'float32' || t.size !== target.length) throw new Error(`readInto: a ${t.dtype} tensor of ${t.size} values into ${target.length} float32s`);
  const backend = tf.backend() as Partial<WasmHeap>;
  const stored = tf.getBackend() === 'wasm' ? backend.dataIdMap?.get(t.dataId) : undefined;
  // A fresh view each time: the heap's buffer changes whenever the wasm memory grows.
  if (stored && backend.wasm) target.set(new Float32Array(backend.wasm.HEAPU8.buffer, stored.memoryOffset, t.size));
  else target.set((await t.data()) as Float32Array);
}
