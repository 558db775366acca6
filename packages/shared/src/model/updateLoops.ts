/*
 * The loops over every value of a round's update, called by name (like a backend's kernels):
 * Adam's step, the generator average's fold, the mean of two contributions, the checked float64
 * sum of any number (exactSum.ts builds the exact sums on these) and the sum of squares that
 * checks a contribution. These are the JavaScript ones; useUpdateLoops() puts faster ones in their
 * place (the native addon's, see backends/native/nativeUpdateLoops.ts), which must give the same
 * bits: the same IEEE float64 operations in the same order, each value rounded to float32 only
 * where these round it.
 */

/** Adam's hyper-parameters and one update's constants (see Adam.begin in the coordinator). */
export interface AdamStepConstants {
  beta1: number;
  beta2: number;
  epsilon: number;
  /** lr / (1 - beta1^t). */
  rate: number;
  /** 1 / (1 - beta2^t). */
  invC2: number;
}

/** One term of a sum: weight · values[i], exact in float64 (see SumTerm in exactSum.ts). */
export interface WeightedValues {
  values: Float32Array | Float64Array;
  weight: number;
}

export interface UpdateLoops {
  /** Which implementation this is, for the logs. */
  readonly name: string;
  /**
   * Adam on values [from, to): m, v and p updated in place from g; with `copy` (to - from values),
   * p's new values are written there too, in the same pass (the update's outgoing body).
   */
  adam(c: AdamStepConstants, p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, from: number, to: number, copy?: Float32Array): void;
  /** avg[i] = beta * avg[i] + (1 - beta) * p[i] on [from, to). */
  emaFold(avg: Float32Array, p: Float32Array, beta: number, from: number, to: number): void;
  /** out[i] = float32((w0 * x0[i] + w1 * x1[i]) / total); returns the largest |out[i]|, NaN if any is NaN. */
  meanOfTwo(out: Float32Array, x0: Float32Array | Float64Array, w0: number, x1: Float32Array | Float64Array, w1: number, total: number): number;
  /**
   * s[i] = w0·x0[i] + w1·x1[i] + … added in that order in float64, every addition checked with
   * Knuth's TwoSum. Without `mean` the sums go to `acc`; with it, float32(s[i] / total) goes to
   * `mean.out` (acc is then scratch). Returns the coordinates where an addition was not exact, and
   * the largest |mean.out[i]| (NaN if any is NaN; 0 without mean).
   */
  sumTerms(terms: readonly WeightedValues[], acc: Float64Array, mean?: { out: Float32Array; total: number }): { redo: number[]; worst: number };
  /**
   * Σ values[i]² in four running sums (values[i] into sum i % 4, the last length % 4 into the
   * first), added as (s0 + s1) + (s2 + s3), and the largest |values[i]| (NaN if any is NaN). With
   * `into` (the values' type and length) each value is copied there as it is read: what was summed
   * is what was copied, even while another process writes `values` (a reply in shared memory).
   */
  sumOfSquares<A extends Float32Array | Float64Array>(values: A, into?: A): { squares: number; worst: number };
}

/** Terms added in one pass over the coordinates: their arrays in locals, which a loop over an array of arrays cannot match. */
const GROUP = 4;

/** sumTerms for terms from..from+GROUP, added to acc (from 0: set to their sum), or to mean.out for the last group. */
function addGroup(terms: readonly WeightedValues[], acc: Float64Array, from: number, redo: number[], mean?: { out: Float32Array; total: number }): number {
  const n = Math.min(GROUP, terms.length - from);
  const t = (j: number) => terms[from + Math.min(j, n - 1)] as WeightedValues;
  const [x0, x1, x2, x3] = [t(0).values, t(1).values, t(2).values, t(3).values];
  const [w0, w1, w2, w3] = [t(0).weight, t(1).weight, t(2).weight, t(3).weight];
  const add = from > 0;
  const out = mean?.out;
  const total = mean?.total ?? 1;
  let worst = 0;
  for (let i = 0; i < acc.length; i++) {
    // From 0 the first product is the sum so far, exactly; each later addition is checked.
    let s = add ? (acc[i] as number) : w0 * (x0[i] as number);
    let exact = true;
    let p: number, u: number, b: number;
    if (add) {
      p = w0 * (x0[i] as number);
      u = s + p;
      b = u - s;
      if (s - (u - b) + (p - b) !== 0) exact = false;
      s = u;
    }
    if (n > 1) {
      p = w1 * (x1[i] as number);
      u = s + p;
      b = u - s;
      if (s - (u - b) + (p - b) !== 0) exact = false;
      s = u;
    }
    if (n > 2) {
      p = w2 * (x2[i] as number);
      u = s + p;
      b = u - s;
      if (s - (u - b) + (p - b) !== 0) exact = false;
      s = u;
    }
    if (n > 3) {
      p = w3 * (x3[i] as number);
      u = s + p;
      b = u - s;
      if (s - (u - b) + (p - b) !== 0) exact = false;
      s = u;
    }
    if (out) {
      const g = Math.fround(s / total);
      out[i] = g;
      const m = Math.abs(g);
      if (m > worst || m !== m) worst = m;
    } else acc[i] = s;
    if (!exact) redo.push(i);
  }
  return worst;
}

export const jsUpdateLoops: UpdateLoops = {
  name: 'javascript',
  adam({ beta1: b1, beta2: b2, epsilon: eps, rate, invC2 }, p, g, m, v, from, to, copy) {
    if (copy && copy.length !== to - from) throw new RangeError('adam: `copy` must hold to - from values');
    const a1 = 1 - b1;
    const a2 = 1 - b2;
    for (let i = from; i < to; i++) {
      const gi = g[i] as number;
      const mi = b1 * (m[i] as number) + a1 * gi;
      const vi = b2 * (v[i] as number) + a2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] = (p[i] as number) - (rate * mi) / (Math.sqrt(vi * invC2) + eps);
      if (copy) copy[i - from] = p[i] as number;
    }
  },
  emaFold(avg, p, beta, from, to) {
    const alpha = 1 - beta;
    for (let i = from; i < to; i++) avg[i] = beta * (avg[i] as number) + alpha * (p[i] as number);
  },
  meanOfTwo(out, x0, w0, x1, w1, total) {
    let worst = 0;
    for (let i = 0; i < out.length; i++) {
      const g = Math.fround((w0 * (x0[i] as number) + w1 * (x1[i] as number)) / total);
      out[i] = g;
      const m = Math.abs(g);
      if (m > worst || m !== m) worst = m;
    }
    return worst;
  },
  sumOfSquares(values, into) {
    if (into && (into.length !== values.length || into.constructor !== values.constructor))
      throw new TypeError("sumOfSquares: `into` must be an array of the values' type and length");
    // Four running sums, not one: a single sum waits on each addition before the next.
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let worst = 0;
    const whole = values.length - (values.length % 4);
    for (let i = 0; i < whole; i += 4) {
      const a = values[i] as number;
      const b = values[i + 1] as number;
      const c = values[i + 2] as number;
      const d = values[i + 3] as number;
      if (into) {
        into[i] = a;
        into[i + 1] = b;
        into[i + 2] = c;
        into[i + 3] = d;
      }
      s0 += a * a;
      s1 += b * b;
      s2 += c * c;
      s3 += d * d;
      worst = Math.max(worst, Math.abs(a), Math.abs(b), Math.abs(c), Math.abs(d));
    }
    for (let i = whole; i < values.length; i++) {
      const v = values[i] as number;
      if (into) into[i] = v;
      s0 += v * v;
      worst = Math.max(worst, Math.abs(v));
    }
    return { squares: s0 + s1 + (s2 + s3), worst };
  },
  sumTerms(terms, acc, mean) {
    const redo: number[] = [];
    const last = Math.floor((terms.length - 1) / GROUP) * GROUP;
    for (let from = 0; from < last; from += GROUP) addGroup(terms, acc, from, redo);
    const worst = addGroup(terms, acc, last, redo, mean);
    return { redo: [...new Set(redo)].sort((a, b) => a - b), worst };
  },
};

let active: UpdateLoops = jsUpdateLoops;

/** The loops in use in this thread. */
export function updateLoops(): UpdateLoops {
  return active;
}

/** Puts `loops` in use in this thread (jsUpdateLoops to go back). */
export function useUpdateLoops(loops: UpdateLoops): void {
  active = loops;
}
