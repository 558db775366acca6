import type { Phase } from '@ganfleet/shared/wire';

/** Accepted norms per phase kept as the run's recent history. */
const HISTORY = 32;

/**
 * Compares each worker's gradient norm with a robust reference: the median of this round's
 * norms together with the last accepted ones of the same phase (so a single worker, or two of
 * which one lies, are judged against the run's own history). A norm above `maxRatio` times the
 * reference is an outlier; a worker that sends one is dropped and the round goes on without it.
 */
export class ContributionScreen {
  private readonly history: Record<Phase, number[]> = { D: [], G: [] };

  constructor(readonly maxRatio: number) {}

  /** Indices of the outliers among this round's norms, and each norm's ratio to the reference. */
  screen(phase: Phase, norms: readonly number[]): { outliers: number[]; ratios: number[]; reference: number } {
    const reference = median([...this.history[phase], ...norms]);
    const ratios = norms.map((n) => (reference > 0 ? n / reference : n > 0 ? Infinity : 1));
    const outliers = ratios.flatMap((r, i) => (r > this.maxRatio ? [i] : []));
    return { outliers, ratios, reference };
  }

  /** Remembers the norms of the contributions a round used. */
  accept(phase: Phase, norms: readonly number[]): void {
    const h = this.history[phase];
    h.push(...norms);
    if (h.length > HISTORY) h.splice(0, h.length - HISTORY);
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
