/*
 * The coordinator's apply step per round (ParamStore.apply's aggregation, then the Adam step it
 * leaves pending; each also timed on its own; and the check of one reply, gradientNorm), for each --aggregate mode with 4 and 16
 * contributions (`mean` also with 1 and 2, a local cluster's), on both presets, with the JavaScript
 * update loops and with the native addon's where it loads: what a round costs the coordinator
 * beyond moving bytes. Median of `reps` rounds after one warm-up.
 */
import { Rng } from '@ganfleet/shared/data';
import { getPreset, initParams, jsUpdateLoops, specsOf, updateLoops, useUpdateLoops } from '@ganfleet/shared/model';
import { useFastestUpdateLoops } from '@ganfleet/shared/backends';
import type { Phase } from '@ganfleet/shared/wire';
import { AGGREGATIONS, ParamStore, batchContribution, gradientNorm, runSettings } from '@ganfleet/coordinator';

export async function applyBench(emit: (record: Record<string, unknown>) => void, reps: number): Promise<void> {
  await useFastestUpdateLoops();
  const fastest = updateLoops();
  for (const loops of fastest === jsUpdateLoops ? [fastest] : [jsUpdateLoops, fastest]) {
    useUpdateLoops(loops);
    await applyBenchWith(loops.name, emit, reps);
  }
  useUpdateLoops(fastest);
}

async function applyBenchWith(loops: string, emit: (record: Record<string, unknown>) => void, reps: number): Promise<void> {
  for (const presetName of ['mlp', 'conv']) {
    const preset = getPreset(presetName);
    const rng = new Rng(1);
    const channels = (name: string): number => preset.params.find((s) => s.name === name)?.shape[0] ?? 0;
    for (const contributions of [1, 2, 4, 16]) {
      for (const mode of contributions < 4 ? (['mean'] as const) : AGGREGATIONS) {
        const store = new ParamStore(preset, initParams(preset, 1), runSettings({ preset: presetName }).adam, 0.9, undefined, { mode, trim: 1 });
        const result: Record<string, number> = {};
        for (const phase of ['D', 'G'] as Phase[]) {
          const parts = Array.from({ length: contributions }, () =>
            batchContribution({
              samples: 64,
              loss: 1,
              grads: new Map(specsOf(preset, phase).map((s) => [s.name, rng.fillNormal(new Float32Array(s.shape.reduce((a, b) => a * b, 1)), 0.01)])),
              // Batch-norm statistics [means, variances]: zeros, then ones.
              stats: new Map(preset.batchNorms.map((bn) => [bn.layer, new Float32Array(2 * channels(bn.movingMean)).fill(1, channels(bn.movingMean))])),
            }),
          );
          const reply = specsOf(preset, phase).map((s) => ({ name: s.name, shape: s.shape, values: parts[0]?.grads.get(s.name)?.values as Float32Array }));
          const times: { combine: number; adam: number; check: number }[] = [];
          for (let r = 0; r <= reps; r++) {
            const t0 = performance.now();
            store.apply(phase, parts);
            const t1 = performance.now();
            // Reading the parameters carries out the Adam step that apply leaves pending.
            void store.params;
            const t2 = performance.now();
            gradientNorm(reply);
            if (r > 0) times.push({ combine: t1 - t0, adam: t2 - t1, check: performance.now() - t2 });
          }
          const ms = (f: (t: (typeof times)[number]) => number): number => Number(median(times.map(f)).toFixed(2));
          result[`${phase}ApplyMs`] = ms((t) => t.combine + t.adam);
          result[`${phase}CombineMs`] = ms((t) => t.combine);
          result[`${phase}AdamMs`] = ms((t) => t.adam);
          result[`${phase}CheckOneReplyMs`] = ms((t) => t.check);
        }
        emit({ bench: 'apply', loops, model: presetName, contributions, aggregate: mode, ...result });
      }
    }
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
