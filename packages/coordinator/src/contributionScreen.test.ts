import { describe, expect, it } from 'vitest';
import { ContributionScreen } from './contributionScreen.js';

describe('ContributionScreen', () => {
  it('flags a norm beyond the ratio of the median of this round and the recent history, per phase', () => {
    const screen = new ContributionScreen(10);
    for (let r = 0; r < 10; r++) screen.accept('D', [1 + r / 10, 1.2]);
    // Two workers, one of them lying: the history decides.
    const { outliers, ratios } = screen.screen('D', [1.3, 900]);
    expect(outliers).toEqual([1]);
    expect(ratios[1]).toBeGreaterThan(100);
    // The G history is empty: a lone first contribution is its own reference.
    expect(screen.screen('G', [900]).outliers).toEqual([]);
    // Within the ratio: kept.
    expect(screen.screen('D', [9]).outliers).toEqual([]);
  });

  it('with no history, judges the contributions of a round against each other', () => {
    const screen = new ContributionScreen(10);
    expect(screen.screen('G', [1, 1.1, 0.9, 50]).outliers).toEqual([3]);
    expect(screen.screen('G', [0, 0, 0]).outliers).toEqual([]);
  });
});
