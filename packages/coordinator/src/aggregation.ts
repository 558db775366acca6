/**
 * How a round's contributions become one gradient. `mean` is the sample-weighted average, summed
 * exactly (meanOfTerms) so that no grouping of the contributions (relays) changes it; the robust
 * modes work coordinate by coordinate and ignore sample weights, for fleets whose members are not
 * all trusted (and cannot go through relays, which send sums):
 * - `trimmed-mean`: drop the `trim` largest and `trim` smallest values of each coordinate, average
 *   the rest; with at most `trim` dishonest contributions each coordinate stays within the range
 *   of the honest ones. Needs at least 2·trim + 1 contributions.
 * - `median`: the middle value (the mean of the two middle ones for an even count); with fewer
 *   than half dishonest, each coordinate stays within the honest range.
 */
export type Aggregation = 'mean' | 'trimmed-mean' | 'median';

export const AGGREGATIONS: readonly Aggregation[] = ['mean', 'trimmed-mean', 'median'];

/**
 * The largest combined gradient magnitude a round may apply: far above any honest one, and low
 * enough that Adam's state cannot overflow (see Adam).
 */
export const MAX_COMBINED_GRADIENT = 1e18;

/** Writes the coordinate-wise robust aggregate of `parts` into `out`; returns whether it is finite and within ±MAX_COMBINED_GRADIENT. */
export function robustAggregate(mode: Exclude<Aggregation, 'mean'>, parts: readonly Float32Array[], out: Float32Array, trim: number): boolean {
  const n = parts.length;
  const cut = mode === 'median' ? Math.floor((n - 1) / 2) : Math.min(trim, Math.floor((n - 1) / 2));
  const column = new Float64Array(n);
  for (let i = 0; i < out.length; i++) {
    for (let j = 0; j < n; j++) column[j] = (parts[j] as Float32Array)[i] as number;
    insertionSort(column);
    let acc = 0;
    for (let j = cut; j < n - cut; j++) acc += column[j] as number;
    out[i] = acc / (n - 2 * cut);
  }
  return out.every((v) => Math.abs(v) <= MAX_COMBINED_GRADIENT);
}

/** In place; the fastest sort for the handful of values a coordinate has. */
function insertionSort(a: Float64Array): void {
  for (let i = 1; i < a.length; i++) {
    const x = a[i] as number;
    let j = i - 1;
    while (j >= 0 && (a[j] as number) > x) {
      a[j + 1] = a[j] as number;
      j--;
    }
    a[j + 1] = x;
  }
}
