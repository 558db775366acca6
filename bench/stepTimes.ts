import type { Trainer } from '@ganfleet/shared/model';

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** Median D and G step times (ms) of `reps` alternating steps at `batch`, after `warmup` pairs. */
export async function medianStepTimes(trainer: Trainer, batch: number, reps: number, warmup: number): Promise<{ d: number; g: number }> {
  const indices = Uint32Array.from({ length: batch }, (_, i) => i);
  const time = async (phase: 'D' | 'G'): Promise<number> =>
    (await trainer.compute({ phase, batchSize: batch, seed: 1, ...(phase === 'D' ? { indices } : {}) })).computeMs;
  for (let i = 0; i < warmup; i++) {
    await time('D');
    await time('G');
  }
  const d: number[] = [];
  const g: number[] = [];
  for (let i = 0; i < reps; i++) {
    d.push(await time('D'));
    g.push(await time('G'));
  }
  return { d: median(d), g: median(g) };
}
