import * as tf from '@tensorflow/tfjs';
import { readInto } from '../backends/readInto.js';
import { type Dataset, Rng, gatherBatch } from '../data/index.js';
import { toTensors } from './params.js';
import { phaseGradients } from './phaseGradients.js';
import type { ModelPreset } from './preset.js';
import type { Phase } from '../wire/index.js';

export interface GradientRequest {
  phase: Phase;
  batchSize: number;
  seed: number;
  indices?: Uint32Array;
}

/** Where compute writes its results (a worker: views of its outgoing frame), by parameter and batch-norm layer name. */
export interface GradientTargets {
  grads: ReadonlyMap<string, Float32Array>;
  stats: ReadonlyMap<string, Float32Array>;
}

export interface GradientResult {
  samples: number;
  loss: number;
  grads: Map<string, Float32Array>;
  stats: Map<string, Float32Array>;
  computeMs: number;
}

/**
 * Holds a replica of all parameters as tensors and computes one phase's gradients on one batch.
 * Noise comes from the request's seed and images from its indices, so the same request gives the
 * same gradients in any process.
 */
export class Trainer {
  private readonly tensors = new Map<string, tf.Tensor>();

  constructor(
    readonly preset: ModelPreset,
    private readonly dataset: Dataset,
    /** D's target for real images: 1, or less for one-sided label smoothing. */
    private readonly realLabel = 1,
  ) {}

  /** Replaces the given parameters (all of them on join, the changed ones afterwards). */
  update(params: ReadonlyMap<string, Float32Array>): void {
    for (const [name, t] of toTensors(this.preset, params)) {
      this.tensors.get(name)?.dispose();
      this.tensors.set(name, t);
    }
  }

  /** One phase's gradients (and G's batch-norm statistics), into `into` where it has a target, fresh arrays otherwise. */
  async compute(req: GradientRequest, into?: GradientTargets): Promise<GradientResult> {
    const started = performance.now();
    const { preset, dataset } = this;
    const [h, w, c] = preset.imageShape;
    if (this.tensors.size !== preset.params.length) throw new Error('trainer has no parameters yet');
    if (req.phase === 'D' && req.indices?.length !== req.batchSize) throw new Error('a D round needs batchSize indices');
    const noise = new Rng(req.seed).fillNormal(new Float32Array(req.batchSize * preset.noiseDim));
    const out = tf.tidy(() => {
      const z = tf.tensor2d(noise, [req.batchSize, preset.noiseDim]);
      const real = req.indices ? tf.tensor4d(gatherBatch(dataset, req.indices), [req.batchSize, h, w, c]) : undefined;
      const r = phaseGradients(preset, this.tensors, req.phase, z, real, this.realLabel);
      // Keep the results past the tidy; everything else it made is released.
      return { loss: r.loss, grads: [...r.grads], stats: [...r.stats] };
    });
    try {
      // data(), not dataSync(): the only read that works on every backend (webgpu included). All
      // reads at once, so that on a GPU they wait for one round trip, not one each.
      const read = async (named: [string, tf.Tensor][], targets?: ReadonlyMap<string, Float32Array>): Promise<Map<string, Float32Array>> =>
        new Map(
          await Promise.all(
            named.map(async ([n, t]) => {
              const target = targets?.get(n);
              if (target) await readInto(t, target);
              return [n, target ?? ((await t.data()) as Float32Array)] as const;
            }),
          ),
        );
      const [grads, stats, loss] = await Promise.all([read(out.grads, into?.grads), read(out.stats, into?.stats), out.loss.data()]);
      return { samples: req.batchSize, loss: loss[0] as number, grads, stats, computeMs: performance.now() - started };
    } finally {
      tf.dispose([out.loss, ...out.grads.map(([, t]) => t), ...out.stats.map(([, t]) => t)]);
    }
  }

  dispose(): void {
    tf.dispose([...this.tensors.values()]);
    this.tensors.clear();
  }
}
