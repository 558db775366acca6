/**
 * How a round's contributions become one gradient. `mean` is the sample-weighted average (fused
 * with Adam, see adamStepFromMean); the robust modes work coordinate by coordinate and ignore
 * sample weights, for fleets whose members are not all trusted:
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

/** Parts summed in one pass: their arrays held in locals, which a loop over an array of arrays cannot match. */
const GROUP = 4;

/**
 * Writes the weighted mean of `parts` into `out`, summed in float64 in the parts' order (so it
 * cannot overflow, and N workers equal N in-process micro-batches bit for bit) and rounded to
 * float32. Beyond GROUP parts, the leading ones are first summed into `sum` (float64: the same
 * sums, in the same order). Returns whether every value is finite and within ±MAX_COMBINED_GRADIENT.
 */
export function weightedMean(parts: readonly Float32Array[], weights: readonly number[], total: number, out: Float32Array, sum?: Float64Array): boolean {
  let from = 0;
  if (parts.length > GROUP) {
    if (sum?.length !== out.length) throw new Error('weightedMean: more than 4 parts need a float64 scratch of the output size');
    for (; parts.length - from > GROUP; from += GROUP) addGroup(sum, parts, weights, from, from > 0);
  }
  const base = from > 0 ? sum : undefined;
  const n = parts.length - from;
  const x0 = parts[from] as Float32Array;
  // Missing parts repeat the first with weight 0: adding 0·x changes neither the value nor the sign of the sum.
  const [x1, x2, x3] = [parts[from + 1] ?? x0, parts[from + 2] ?? x0, parts[from + 3] ?? x0];
  const w = (j: number) => (j < n ? (weights[from + j] as number) : 0);
  const [w0, w1, w2, w3] = [w(0), w(1), w(2), w(3)];
  let worst = 0;
  let nan = 0;
  for (let i = 0; i < out.length; i++) {
    const before = base ? (base[i] as number) : 0;
    const g = Math.fround((before + w0 * (x0[i] as number) + w1 * (x1[i] as number) + w2 * (x2[i] as number) + w3 * (x3[i] as number)) / total);
    out[i] = g;
    const a = Math.abs(g);
    if (a > worst) worst = a;
    nan += g * 0;
  }
  return worst <= MAX_COMBINED_GRADIENT && nan === 0;
}

/** sum (+)= the weighted parts from..from+GROUP, left to right. */
function addGroup(sum: Float64Array, parts: readonly Float32Array[], weights: readonly number[], from: number, add: boolean): void {
  const [x0, x1, x2, x3] = parts.slice(from, from + GROUP) as [Float32Array, Float32Array, Float32Array, Float32Array];
  const [w0, w1, w2, w3] = weights.slice(from, from + GROUP) as [number, number, number, number];
  for (let i = 0; i < sum.length; i++) {
    const before = add ? (sum[i] as number) : 0;
    sum[i] = before + w0 * (x0[i] as number) + w1 * (x1[i] as number) + w2 * (x2[i] as number) + w3 * (x3[i] as number);
  }
}

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
