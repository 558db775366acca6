import { describe, expect, it } from 'vitest';
import { classStatistics } from './classStatistics.js';

const oneHot = (labels: number[], classes: number): Float32Array => {
  const out = new Float32Array(labels.length * classes);
  labels.forEach((l, r) => (out[r * classes + l] = 1));
  return out;
};

describe('classStatistics', () => {
  it('scores confident, balanced predictions as all modes, KL 0 and the maximal Inception Score', () => {
    const s = classStatistics(
      oneHot(
        Array.from({ length: 200 }, (_, i) => i % 10),
        10,
      ),
      200,
      10,
    );
    expect(s).toMatchObject({ modes: 10, klUniform: 0, meanConfidence: 1, histogram: new Array(10).fill(20) });
    expect(s.inceptionScore).toBeCloseTo(10, 10);
  });

  it('scores a collapse to one class as one mode, KL log 10 and Inception Score 1', () => {
    const s = classStatistics(oneHot(new Array(50).fill(3), 10), 50, 10);
    expect(s.modes).toBe(1);
    expect(s.klUniform).toBeCloseTo(Math.log(10), 12);
    expect(s.inceptionScore).toBeCloseTo(1, 12);
  });

  it('matches a hand computation on two soft predictions over three classes', () => {
    // Rows (0.5, 0.5, 0) and (0, 0.2, 0.8): p(y) = (0.25, 0.35, 0.4); top classes 0 and 2.
    const probs = Float32Array.from([0.5, 0.5, 0, 0, 0.2, 0.8]);
    const s = classStatistics(probs, 2, 3);
    const kl1 = 0.5 * Math.log(0.5 / 0.25) + 0.5 * Math.log(0.5 / 0.35);
    const kl2 = 0.2 * Math.log(0.2 / 0.35) + 0.8 * Math.log(0.8 / 0.4);
    expect(s.histogram).toEqual([1, 0, 1]);
    expect(s.modes).toBe(2);
    expect(s.klUniform).toBeCloseTo(2 * 0.5 * Math.log(0.5 * 3), 12);
    expect(s.meanConfidence).toBeCloseTo(0.65, 6);
    expect(s.inceptionScore).toBeCloseTo(Math.exp((kl1 + kl2) / 2), 6);
  });

  it('counts a class as a mode from 1 % of the samples', () => {
    // 1000 samples: 10 of class 1 (1 %) is a hit, 9 of class 2 is not.
    const labels = [...new Array<number>(981).fill(0), ...new Array<number>(10).fill(1), ...new Array<number>(9).fill(2)];
    expect(classStatistics(oneHot(labels, 10), 1000, 10).modes).toBe(2);
  });
});
