/*
 * Where a worker's step spends its time, kernel by kernel: tf.profile around the worker's own
 * Trainer.compute. On webgpu the times are GPU timestamps per dispatch when the device has
 * 'timestamp-query' (each kernel then runs alone, so the sum exceeds a normal step's time, which
 * overlaps them); on wasm and cpu they are wall times of the synchronous kernels.
 */
import * as tf from '@tensorflow/tfjs';
import type { Dataset } from '@ganfleet/shared/data';
import { type ModelPreset, initParams, Trainer } from '@ganfleet/shared/model';
import type { Phase } from '@ganfleet/shared/wire';
import { recordPrograms } from '@ganfleet/shared/backends';

export interface KernelRow {
  kernel: string;
  /** Calls per step. */
  calls: number;
  /** Milliseconds per step, all calls together. */
  ms: number;
  /** Fraction of the step's summed kernel time. */
  share: number;
}

export interface PhaseProfile {
  model: string;
  phase: Phase;
  batch: number;
  /** Kernels per step, as tf.profile lists them. */
  kernelsPerStep: number;
  /** webgpu only: GPU programs run per step (what a GPU pays a fixed cost for each of), kernels' inner ones included. */
  dispatchesPerStep?: number;
  kernelMsPerStep: number;
  /** Heaviest first. */
  kernels: KernelRow[];
}

/** Profiles `reps` steps of one phase after a warm-up step (which compiles the GPU pipelines). */
export async function profilePhase(preset: ModelPreset, dataset: Dataset, phase: Phase, batch: number, reps: number): Promise<PhaseProfile> {
  const trainer = new Trainer(preset, dataset);
  trainer.update(initParams(preset, 1));
  const indices = Uint32Array.from({ length: batch }, (_, i) => i % dataset.count);
  // Resolves to nothing: tf.profile wants a tensor container back, and the step's results are plain arrays.
  const step = async (): Promise<void> => void (await trainer.compute({ phase, batchSize: batch, seed: 1, ...(phase === 'D' ? { indices } : {}) }));
  try {
    await step();
    // Counted where every program passes: tf.profile misses the ones a kernel runs inside.
    const dispatchesPerStep = tf.getBackend() === 'webgpu' ? (await recordPrograms(step)).programs.length : undefined;
    const byKernel = new Map<string, { calls: number; ms: number }>();
    for (let i = 0; i < reps; i++) {
      const info = await tf.profile(step);
      for (const k of info.kernels) {
        const row = byKernel.get(k.name) ?? { calls: 0, ms: 0 };
        row.calls += 1;
        row.ms += k.kernelTimeMs as number;
        byKernel.set(k.name, row);
      }
    }
    const total = [...byKernel.values()].reduce((s, r) => s + r.ms, 0);
    const kernels = [...byKernel]
      .map(([kernel, r]) => ({ kernel, calls: r.calls / reps, ms: r.ms / reps, share: total > 0 ? r.ms / total : 0 }))
      .sort((a, b) => b.ms - a.ms);
    return {
      model: preset.name,
      phase,
      batch,
      kernelsPerStep: kernels.reduce((s, r) => s + r.calls, 0),
      ...(dispatchesPerStep === undefined ? {} : { dispatchesPerStep }),
      kernelMsPerStep: total / reps,
      kernels,
    };
  } finally {
    trainer.dispose();
  }
}
