import { describe, expect, it } from 'vitest';
import { Rng } from '@ganfleet/shared/data';
import { MAX_GRADIENT, checkBatchNormStats, checkLoss, gradientNorm } from './contributionChecks.js';

const tensor = (name: string, values: number[]) => ({ name, shape: [values.length], values: Float32Array.from(values) });

describe('contribution checks', () => {
  it('gradientNorm is the L2 norm over all tensors, computed independently', () => {
    const rng = new Rng(5);
    const a = rng.fillNormal(new Float32Array(1000));
    const b = rng.fillNormal(new Float32Array(39), 3);
    const expected = Math.sqrt([...a, ...b].reduce((s, v) => s + v * v, 0));
    expect(
      gradientNorm([
        { name: 'a', shape: [1000], values: a },
        { name: 'b', shape: [39], values: b },
      ]),
    ).toBeCloseTo(expected, 9);
  });

  it('with copyOut, checks each tensor as it copies it out, and the copy takes its place', () => {
    const rng = new Rng(6);
    const source = rng.fillNormal(new Float32Array(1003));
    const room = new Float32Array(1003).fill(9);
    const grads = [{ name: 'a', shape: [1003], values: source }];
    const norm = gradientNorm(grads, (values) => (values === source ? (room as typeof values) : undefined));
    expect(norm).toBe(gradientNorm([{ name: 'a', shape: [1003], values: source.slice() }]));
    expect(grads[0]?.values).toBe(room);
    expect(room).toEqual(source);
    // The sender writes its memory afterwards: what the round uses does not change.
    source.fill(Number.NaN);
    expect(Number.isNaN(room[0] as number)).toBe(false);
    // A value refused is named from the copy, where it was read.
    source.fill(1);
    source[700] = Number.POSITIVE_INFINITY;
    expect(() => gradientNorm([{ name: 'a', shape: [1003], values: source }], () => room as never)).toThrow(
      expect.objectContaining({ code: 'NON_FINITE', message: expect.stringMatching(/index 700 /) }),
    );
  });

  it('refuses NaN and infinities (NON_FINITE) and finite values beyond ±1e15 (OUT_OF_RANGE), naming the tensor and index', () => {
    expect(() => gradientNorm([tensor('ok', [1, 2]), tensor('w', [0, NaN])])).toThrow(
      expect.objectContaining({ code: 'NON_FINITE', message: expect.stringMatching(/"w" has NaN at index 1/) }),
    );
    expect(() => gradientNorm([tensor('w', [-Infinity])])).toThrow(expect.objectContaining({ code: 'NON_FINITE' }));
    // A NaN followed by larger finite values is still found.
    expect(() => gradientNorm([tensor('w', [0.1, NaN, 5, 7])])).toThrow(
      expect.objectContaining({ code: 'NON_FINITE', message: expect.stringMatching(/index 1/) }),
    );
    expect(() => gradientNorm([tensor('w', [0, 0, 1e37])])).toThrow(
      expect.objectContaining({ code: 'OUT_OF_RANGE', message: expect.stringMatching(/index 2/) }),
    );
    // Found in every position of the four-wide pass and in its remainder.
    for (let at = 0; at < 7; at++) {
      const values = [1, 2, 3, 4, 5, 6, 7];
      values[at] = at % 2 === 0 ? NaN : -Infinity;
      expect(() => gradientNorm([tensor('w', values)])).toThrow(
        expect.objectContaining({ code: 'NON_FINITE', message: expect.stringMatching(new RegExp(`index ${at} `)) }),
      );
    }
    // The limit itself (as float32 rounds it) passes.
    const limit = Math.fround(MAX_GRADIENT);
    expect(gradientNorm([tensor('w', [limit, -limit])]) / (Math.SQRT2 * limit)).toBeCloseTo(1, 12);
  });

  it('losses must be finite and in [0, 1e6]; batch-norm means finite and bounded, variances non-negative', () => {
    expect(() => checkLoss(0.69)).not.toThrow();
    expect(() => checkLoss(NaN)).toThrow(expect.objectContaining({ code: 'NON_FINITE' }));
    expect(() => checkLoss(1.7e308)).toThrow(expect.objectContaining({ code: 'OUT_OF_RANGE' }));
    expect(() => checkLoss(-1)).toThrow(expect.objectContaining({ code: 'OUT_OF_RANGE' }));
    expect(() => checkBatchNormStats('bn', Float32Array.from([-3, 2, 0.5, 0]))).not.toThrow();
    expect(() => checkBatchNormStats('bn', Float32Array.from([0, 0, -0.5, 1]))).toThrow(expect.objectContaining({ code: 'OUT_OF_RANGE' }));
    expect(() => checkBatchNormStats('bn', Float32Array.from([1e30, 0, 1, 1]))).toThrow(expect.objectContaining({ code: 'OUT_OF_RANGE' }));
    expect(() => checkBatchNormStats('bn', Float32Array.from([NaN, 0, 1, 1]))).toThrow(expect.objectContaining({ code: 'NON_FINITE' }));
  });
});
