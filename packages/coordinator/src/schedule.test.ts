import { describe, expect, it } from 'vitest';
import { Schedule } from './schedule.js';

describe('Schedule', () => {
  it('pre-trains D, then alternates k D rounds with one G round', () => {
    const s = new Schedule({ pretrainSteps: 3, dStepsPerG: 2, steps: 2 });
    expect(s.totalRounds).toBe(3 + 2 * 3);
    const phases = Array.from({ length: s.totalRounds }, (_, r) => s.phaseOf(r)).join('');
    expect(phases).toBe('DDD' + 'DDG' + 'DDG');
    expect(s.iterationsAfter(3)).toBe(0);
    expect(s.iterationsAfter(6)).toBe(1);
    expect(s.iterationsAfter(9)).toBe(2);
  });

  it('with k = 1 and no pre-training is plain alternation', () => {
    const s = new Schedule({ pretrainSteps: 0, dStepsPerG: 1, steps: 3 });
    expect(Array.from({ length: 6 }, (_, r) => s.phaseOf(r)).join('')).toBe('DGDGDG');
  });
});
