import type { Phase } from '@ganfleet/shared/wire';

/** `[round, loss]`: one plotted point, the mean loss over `stride` consecutive rounds of its phase. */
export type LossPoint = [number, number];

export interface LossHistoryJson {
  D: LossPoint[];
  G: LossPoint[];
  /** Rounds of that phase averaged into each point. */
  stride: Record<Phase, number>;
}

interface Series {
  points: LossPoint[];
  stride: number;
  /** Rounds accumulating into the next point. */
  pending: { round: number; sum: number; n: number } | undefined;
}

/**
 * The loss curves the dashboard draws, bounded for any run length: each phase keeps at most
 * `maxPoints` points; when full, neighbouring points are averaged in pairs and later points
 * cover twice as many rounds, so the whole run stays on the chart at an even resolution.
 */
export class LossHistory {
  private readonly series: Record<Phase, Series> = { D: emptySeries(), G: emptySeries() };

  constructor(private readonly maxPoints = 1000) {
    if (maxPoints < 2 || maxPoints % 2 !== 0) throw new Error('maxPoints must be an even number >= 2');
  }

  record(r: { round: number; phase: Phase; loss: number }): void {
    const s = this.series[r.phase];
    const p = (s.pending ??= { round: r.round, sum: 0, n: 0 });
    p.sum += r.loss;
    p.n += 1;
    if (p.n < s.stride) return;
    s.points.push([p.round, p.sum / p.n]);
    s.pending = undefined;
    if (s.points.length >= this.maxPoints) {
      s.points = halve(s.points);
      s.stride *= 2;
    }
  }

  toJSON(): LossHistoryJson {
    return { D: [...this.series.D.points], G: [...this.series.G.points], stride: { D: this.series.D.stride, G: this.series.G.stride } };
  }
}

function emptySeries(): Series {
  return { points: [], stride: 1, pending: undefined };
}

/** Pairs of points become one: the first one's round, the mean of both losses (both cover the same number of rounds). */
function halve(points: LossPoint[]): LossPoint[] {
  const out: LossPoint[] = [];
  for (let i = 0; i + 1 < points.length; i += 2) {
    const [a, b] = [points[i] as LossPoint, points[i + 1] as LossPoint];
    out.push([a[0], (a[1] + b[1]) / 2]);
  }
  return out;
}
