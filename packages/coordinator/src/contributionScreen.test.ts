import { describe, expect, it } from 'vitest';
import { ContributionScreen } from './contributionScreen.js';

describe('ContributionScreen', () => {
  it("with three or more workers, flags a norm beyond the ratio of the round's median", () => {
    const screen = new ContributionScreen(10);
    expect(screen.screen('G', [1, 1.1, 0.9, 50]).outliers).toEqual([3]);
    expect(screen.screen('G', [1, 1.1, 0.9, 9]).outliers).toEqual([]);
    expect(screen.screen('G', [0, 0, 0]).outliers).toEqual([]);
  });

  it('with one or two workers, judges against the phase history at a 100x wider limit, once there is enough of it', () => {
    const screen = new ContributionScreen(10);
    // No history yet: nothing to judge a lone worker by.
    expect(screen.screen('D', [1e6]).outliers).toEqual([]);
    for (let r = 0; r < 10; r++) screen.accept('D', [1 + r / 10, 1.2]);
    // An honest norm growing 12x in a few rounds (measured on `conv`) passes; 10^5 times does not.
    expect(screen.screen('D', [1.3, 15]).outliers).toEqual([]);
    const { outliers, ratios, limit } = screen.screen('D', [1.3, 1.5e5]);
    expect(outliers).toEqual([1]);
    expect(ratios[1]).toBeGreaterThan(1e4);
    expect(limit).toBe(1000);
    // The G history is separate and empty.
    expect(screen.screen('G', [1e6]).outliers).toEqual([]);
  });

  it('never flags every contribution of a round: that is a change of regime', () => {
    const screen = new ContributionScreen(10);
    for (let r = 0; r < 10; r++) screen.accept('D', [1, 1]);
    expect(screen.screen('D', [5000, 6000]).outliers).toEqual([]);
  });
});
