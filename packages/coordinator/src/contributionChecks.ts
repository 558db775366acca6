import { updateLoops } from '@ganfleet/shared/model';
import { GanError, type NamedTensor } from '@ganfleet/shared/wire';

/*
 * The sane ranges of what a worker sends, checked before anything of it is used. An honest GAN
 * gradient is many orders of magnitude inside them; the bounds keep the average, its square in
 * Adam's second moment and the update itself far from float32's overflow.
 */

/** Largest gradient magnitude accepted: its square (Adam's v) stays below float32's 3.4e38. */
export const MAX_GRADIENT = 1e15;
/** Largest loss accepted; the log-losses are non-negative. */
export const MAX_LOSS = 1e6;
/** Largest batch-norm mean magnitude, and variance, accepted. */
export const MAX_STAT = 1e15;

/**
 * Where values read from memory their sender can still write (a reply in shared memory) are
 * copied to be checked and used: a view of their type and length in memory of this process, or
 * undefined for values already there (converted on decoding).
 */
export type CopyOut = <A extends Float32Array | Float64Array>(values: A) => A | undefined;

/**
 * Finite, within ±MAX_GRADIENT, and the L2 norm of all of them, in one pass. With `copyOut` each
 * tensor is copied out in that pass and the copy, which is what was checked, takes its place.
 */
export function gradientNorm(tensors: NamedTensor[], copyOut?: CopyOut): number {
  let sum = 0;
  for (const t of tensors) {
    const checked = checkedCopy(`gradients: tensor "${t.name}"`, t.values, MAX_GRADIENT, copyOut);
    t.values = checked.values;
    sum += checked.squares;
  }
  return Math.sqrt(sum);
}

/**
 * A relay's sums (and their rest): finite, within ±limit (its samples times the per-sample bound).
 * Returns the values to use (with `copyOut`, the copy made in the checking pass, as in gradientNorm)
 * and their sum of squares.
 */
export function checkSums<A extends Float32Array | Float64Array>(name: string, values: A, limit: number, copyOut?: CopyOut): { values: A; squares: number } {
  return checkedCopy(`sums of ${name}`, values, limit, copyOut);
}

/** checkedSquares of `values`, copied out in the same pass where copyOut gives them a place: the values to use, and their Σv². */
function checkedCopy<A extends Float32Array | Float64Array>(what: string, values: A, limit: number, copyOut?: CopyOut): { values: A; squares: number } {
  const into = copyOut?.(values);
  return { squares: checkedSquares(what, values, limit, into), values: into ?? values };
}

/** Σv² over `values`, each checked finite and within ±limit in the same pass (and copied `into`); `what` names them in the error. */
function checkedSquares<A extends Float32Array | Float64Array>(what: string, values: A, limit: number, into?: A): number {
  const { squares, worst } = updateLoops().sumOfSquares(values, into);
  // worst is NaN if any value is NaN, and an infinity is the largest magnitude: either fails the test.
  if (!(worst <= limit)) {
    const checked = into ?? values;
    const at = checked.findIndex((v) => !(Math.abs(v) <= limit));
    const v = checked[at] as number;
    throw new GanError(Number.isFinite(v) ? 'OUT_OF_RANGE' : 'NON_FINITE', `${what} has ${v} at index ${at} (limit ±${limit})`);
  }
  return squares;
}

export function checkLoss(loss: number): void {
  if (!Number.isFinite(loss)) throw new GanError('NON_FINITE', `loss is ${loss}`);
  if (loss < 0 || loss > MAX_LOSS) throw new GanError('OUT_OF_RANGE', `loss ${loss} is outside [0, ${MAX_LOSS}]`);
}

/** [means, variances] of one batch-norm layer: finite means within ±MAX_STAT, variances in [0, MAX_STAT]. */
export function checkBatchNormStats(name: string, stats: Float32Array): void {
  const channels = stats.length / 2;
  for (let i = 0; i < stats.length; i++) {
    const v = stats[i] as number;
    const ok = i < channels ? Math.abs(v) <= MAX_STAT : v >= 0 && v <= MAX_STAT;
    if (!ok) throw new GanError(Number.isFinite(v) ? 'OUT_OF_RANGE' : 'NON_FINITE', `batch-norm statistics of ${name}: ${v} at index ${i}`);
  }
}
