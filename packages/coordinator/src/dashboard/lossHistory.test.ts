import { describe, expect, it } from 'vitest';
import { LossHistory } from './lossHistory.js';

describe('LossHistory', () => {
  it('keeps D and G apart, one point per round while there is room', () => {
    const h = new LossHistory(8);
    h.record({ round: 0, phase: 'D', loss: 1 });
    h.record({ round: 1, phase: 'G', loss: 2 });
    h.record({ round: 2, phase: 'D', loss: 3 });
    expect(h.toJSON()).toEqual({
      D: [
        [0, 1],
        [2, 3],
      ],
      G: [[1, 2]],
      stride: { D: 1, G: 1 },
    });
  });

  it('stays bounded over a long run by averaging neighbours, and covers the whole run', () => {
    const h = new LossHistory(8);
    for (let round = 0; round < 1000; round++) h.record({ round, phase: 'D', loss: round });
    const { D, stride } = h.toJSON();
    expect(D.length).toBeLessThan(8);
    expect(D.length).toBeGreaterThanOrEqual(4);
    expect(D[0]?.[0]).toBe(0);
    // Each point covers `stride` rounds starting at its round: the mean of round..round+stride-1.
    for (const [round, loss] of D) expect(loss).toBeCloseTo(round + (stride.D - 1) / 2);
    const last = D.at(-1) as [number, number];
    expect(last[0] + stride.D).toBeGreaterThan(1000 - stride.D);
  });

  it('rejects a bound that cannot be halved evenly', () => {
    expect(() => new LossHistory(7)).toThrow(/even/);
  });
});
