import type { Trainer } from '@ganfleet/shared/model';

/** This process's peak resident set so far, MiB. */
export const peakRssMiB = (): number => Math.round(process.resourceUsage().maxRSS / 1024);
export const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
/** The middle value, or the mean of the two middle values of an even count. */
export function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

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

/** A round's apply on the coordinator: combining the replies, plus an Adam step (the previous round's, carried out during this round's send). */
export function applyMs(r: { applyMs: number; adamMs: number }): number {
  return r.applyMs + r.adamMs;
}
