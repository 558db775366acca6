import { describe, expect, it } from 'vitest';
import { EMA_HORIZON, PRESET_NAMES, type RunSettings, TRAIN_STEPS, runSettings } from '@ganfleet/coordinator';
import { getPreset, presetNames } from '@ganfleet/shared/model';
import { buildProgram } from './main.js';
import { positiveFraction } from './options.js';

describe('flag parsers', () => {
  it('positiveFraction takes decimals and ratios in (0, 1] and refuses the rest', () => {
    expect(positiveFraction('0.25')).toBe(0.25);
    expect(positiveFraction('1/3')).toBe(1 / 3);
    expect(positiveFraction(' 2/4 ')).toBe(0.5);
    expect(positiveFraction('1')).toBe(1);
    for (const bad of ['0', '-0.1', '1.5', '3/2', '1/0', 'x', '', '1/3/4']) expect(() => positiveFraction(bad), bad).toThrow(/\(0, 1\]/);
  });

  it('train and coordinator default to the measured averaging horizon and length, as runSettings does', () => {
    const defaults = runSettings();
    for (const name of ['train', 'coordinator']) {
      const command = buildProgram().commands.find((c) => c.name() === name);
      const option = (long: string) => command?.options.find((o) => o.long === long);
      expect(option('--ema-horizon')?.defaultValue, name).toBe(EMA_HORIZON);
      expect(defaults.emaHorizon).toBe(EMA_HORIZON);
    }
    // The README's main command runs runSettings' length.
    const train = buildProgram().commands.find((c) => c.name() === 'train');
    expect([train?.options.find((o) => o.long === '--steps')?.defaultValue, defaults.schedule.steps]).toEqual([TRAIN_STEPS, TRAIN_STEPS]);
  });

  it('--model takes exactly the presets the model registry defines', () => {
    expect([...PRESET_NAMES].sort()).toEqual([...presetNames()].sort());
    const train = buildProgram().commands.find((c) => c.name() === 'train');
    expect(train?.options.find((o) => o.long === '--model')?.argChoices).toEqual(PRESET_NAMES);
  });

  // What runSettings makes of a preset's default, and of one given instead.
  const inSettings = {
    batchSize: { flag: '--batch-size', read: (s: RunSettings) => s.batchSize, given: (v: number) => ({ batchSize: v }) },
    labelSmoothing: { flag: '--label-smoothing', read: (s: RunSettings) => s.labelSmoothing, given: (v: number) => ({ labelSmoothing: v }) },
    lrDecayFrom: { flag: '--lr-decay-from', read: (s: RunSettings) => s.schedule.lrDecayFrom, given: (v: number) => ({ schedule: { lrDecayFrom: v } }) },
    emaDecay: { flag: '--ema-decay', read: (s: RunSettings) => s.emaDecay, given: (v: number) => ({ emaDecay: v }) },
  };

  it.each(Object.keys(inSettings) as (keyof typeof inSettings)[])("%s is the preset's unless given, and the help names each preset's", (key) => {
    const { flag, read, given } = inSettings[key];
    for (const command of ['train', 'coordinator']) {
      const option = buildProgram()
        .commands.find((c) => c.name() === command)
        ?.options.find((o) => o.long === flag);
      expect(option?.defaultValue).toBeUndefined();
      for (const name of PRESET_NAMES) {
        const value = getPreset(name)[key];
        expect(read(runSettings({ preset: name })), name).toBe(value);
        expect(option?.description, name).toContain(`${name} ${value}`);
        expect(read(runSettings({ preset: name, ...given(0.25) }))).toBe(0.25);
      }
    }
  });

  it('conv: 64 images per step with two workers, no label smoothing, rates decaying over the second half, its own weights as the product; mlp: smoothing 0.1, constant rates, the average (docs/quality.md)', () => {
    const { batchSize, labelSmoothing, lrDecayFrom, emaDecay } = getPreset('conv');
    expect([batchSize, labelSmoothing, lrDecayFrom, emaDecay]).toEqual([32, 0, 0.5, 0]);
    const mlp = getPreset('mlp');
    expect([mlp.batchSize, mlp.labelSmoothing, mlp.lrDecayFrom, mlp.emaDecay]).toEqual([64, 0.1, 1, 0.9999]);
  });
});
