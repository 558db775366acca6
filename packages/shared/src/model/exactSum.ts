/*
 * Exact summation. A round's gradient is the sum of its contributions rounded once, so the
 * result does not depend on the order or grouping of the additions: a relay can add up its
 * children's contributions and its parent add up the relays', and the parameters are the same bit
 * for bit as when one coordinate adds up every worker's (or the in-process trainer every
 * micro-batch's). Most sums of a handful of float32 values are exact in float64 already; the
 * additions are checked with Knuth's TwoSum and only the rare coordinates where one was not exact
 * are summed again with Shewchuk's expansions (the algorithm of Python's math.fsum).
 */

import { updateLoops } from './updateLoops.js';

/** Adds `x` to the expansion `partials` (non-overlapping components of increasing magnitude) exactly, in place. */
export function addToExpansion(partials: number[], x: number): void {
  let i = 0;
  for (let j = 0; j < partials.length; j++) {
    let y = partials[j] as number;
    if (Math.abs(x) < Math.abs(y)) [x, y] = [y, x];
    const hi = x + y;
    const lo = y - (hi - x);
    if (lo !== 0) partials[i++] = lo;
    x = hi;
  }
  partials.length = i;
  partials.push(x);
}

/** The exact value of an expansion rounded to the nearest float64 (ties to even), as math.fsum rounds. */
export function roundExpansion(partials: readonly number[]): number {
  let n = partials.length;
  if (n === 0) return 0;
  let hi = partials[--n] as number;
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = partials[--n] as number;
    hi = x + y;
    lo = y - (hi - x);
    if (lo !== 0) break;
  }
  // Half-way cases: the components below decide the direction.
  const below = n > 0 ? (partials[n - 1] as number) : 0;
  if ((lo < 0 && below < 0) || (lo > 0 && below > 0)) {
    const y = lo * 2;
    const x = hi + y;
    if (y === x - hi) hi = x;
  }
  return hi;
}

/** a·b = p + e exactly (Dekker's product with Veltkamp's split), for finite a·b far from overflow. */
export function twoProduct(a: number, b: number): [number, number] {
  const p = a * b;
  const [ah, al] = split(a);
  const [bh, bl] = split(b);
  return [p, ah * bh - p + ah * bl + al * bh + al * bl];
}

function split(a: number): [number, number] {
  const c = 134217729 * a; // 2^27 + 1
  const hi = c - (c - a);
  return [hi, a - hi];
}

/**
 * One term of a sum: `weight · values[i]` for every coordinate, which must be exact in float64 (a
 * sample count up to 2^29 times float32 values, or weight 1 for float64 values that are already
 * sums), plus `rest`: coordinates whose value has further components (a partial sum that one
 * float64 cannot hold exactly).
 */
export interface SumTerm {
  values: Float32Array | Float64Array;
  weight: number;
  rest?: ReadonlyMap<number, readonly number[]>;
}

/**
 * The exact sum of every coordinate's terms, rounded once to float64, into `sum`. Returns the
 * coordinates whose exact sum is not `sum[i]`, each with the components of the difference (what a
 * relay sends beside its float64 sums so that its parent still adds exactly).
 */
export function sumTerms(terms: readonly SumTerm[], sum: Float64Array): Map<number, number[]> {
  if (terms.length === 0) throw new Error('sumTerms: no terms');
  const redo = new Set(updateLoops().sumTerms(terms, sum).redo);
  for (const term of terms) for (const i of term.rest?.keys() ?? []) redo.add(i);
  const rest = new Map<number, number[]>();
  for (const i of redo) {
    const partials = exactPartials(terms, i);
    const rounded = roundExpansion(partials);
    sum[i] = rounded;
    addToExpansion(partials, -rounded);
    const left = partials.filter((v) => v !== 0);
    if (left.length > 0) rest.set(i, left);
  }
  return rest;
}

/** The exact sum of coordinate i's terms as an expansion. */
function exactPartials(terms: readonly SumTerm[], i: number): number[] {
  const partials: number[] = [];
  for (const term of terms) {
    addToExpansion(partials, term.weight * (term.values[i] as number));
    for (const c of term.rest?.get(i) ?? []) addToExpansion(partials, c);
  }
  return partials;
}

/**
 * out[i] = float32(exact sum of the terms / total): the mean a round applies. The sum is rounded
 * to float64 once, then divided and rounded to float32, as the coordinator has always done, so a
 * sum that float64 holds exactly gives the same result as before; up to four terms take one pass
 * (one or two need no check). `scratch` (float64, out's length) holds the partial sums of more.
 * Returns whether every value is finite and within ±limit.
 */
export function meanOfTerms(terms: readonly SumTerm[], total: number, out: Float32Array, limit: number, scratch: Float64Array): boolean {
  if (terms.length === 0) throw new Error('meanOfTerms: no terms');
  if (scratch.length !== out.length) throw new Error('meanOfTerms: the float64 scratch must have the output size');
  const redo = new Set<number>();
  let worst: number;
  if (terms.length <= 2) worst = meanOfTwo(terms, out, total);
  else {
    const sum = updateLoops().sumTerms(terms, scratch, { out, total });
    for (const i of sum.redo) redo.add(i);
    worst = sum.worst;
  }
  for (const term of terms) for (const i of term.rest?.keys() ?? []) redo.add(i);
  for (const i of redo) {
    const g = Math.fround(roundExpansion(exactPartials(terms, i)) / total);
    out[i] = g;
    if (!(Math.abs(g) <= limit)) worst = Math.abs(g);
  }
  return worst <= limit;
}

/**
 * meanOfTerms for one or two terms: both products are exact and float64 rounds their one addition
 * correctly (IEEE 754), which is the exact sum rounded once, so nothing needs checking. Returns the
 * largest magnitude written (NaN if any was).
 */
function meanOfTwo(terms: readonly SumTerm[], out: Float32Array, total: number): number {
  const first = terms[0] as SumTerm;
  // With one term, the second repeats it at weight 0 (adding 0 to each finite value).
  const second = terms[1] ?? { values: first.values, weight: 0 };
  return updateLoops().meanOfTwo(out, first.values, first.weight, second.values, second.weight, total);
}
