import type { Phase } from '@ganfleet/shared/wire';

/** Accepted norms per phase kept as the run's recent history. */
const HISTORY = 32;
/** History entries needed before a round of one or two workers is judged against it. */
const MIN_HISTORY = 8;
/**
 * Against the history the limit is this many times wider: honest norms can grow by more than the
 * round-to-round ratio while a run finds its feet (a `conv` D norm went from ~2 to 25 in a few
 * rounds), and a history lags where a round's own median does not.
 */
const HISTORY_SLACK = 100;

/**
 * Compares each worker's gradient norm with a robust reference. With three or more workers in a
 * round, the round's own median: one worker far from the others is an outlier. With one or two,
 * the median of the run's recent accepted norms of that phase, at a wider limit. A round in which
 * every contribution would be an outlier is a change of regime, not an attack, and is accepted.
 * A worker that sends an outlier is dropped and the round goes on without it.
 */
export class ContributionScreen {
  private readonly history: Record<Phase, number[]> = { D: [], G: [] };

  constructor(readonly maxRatio: number) {}

  /** Indices of the outliers among this round's norms, each norm's ratio to the reference, the reference and the limit applied. */
  screen(phase: Phase, norms: readonly number[]): { outliers: number[]; ratios: number[]; reference: number; limit: number } {
    const history = this.history[phase];
    const byRound = norms.length >= 3;
    if (!byRound && history.length < MIN_HISTORY) return { outliers: [], ratios: norms.map(() => 1), reference: median(norms), limit: Infinity };
    const reference = byRound ? median(norms) : median(history);
    const limit = byRound ? this.maxRatio : this.maxRatio * HISTORY_SLACK;
    const ratios = norms.map((n) => (reference > 0 ? n / reference : n > 0 ? Infinity : 1));
    const outliers = ratios.flatMap((r, i) => (r > limit ? [i] : []));
    return { outliers: outliers.length === norms.length ? [] : outliers, ratios, reference, limit };
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
