import { describe, expect, it } from 'vitest';
import { EMA_DECAY, EMA_HORIZON, PRESET_NAMES, TRAIN_STEPS, runSettings } from '@ganfleet/coordinator';
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

  it('train and coordinator default to the measured averaging, as runSettings does', () => {
    const defaults = runSettings();
    for (const name of ['train', 'coordinator']) {
      const command = buildProgram().commands.find((c) => c.name() === name);
      const option = (long: string) => command?.options.find((o) => o.long === long);
      expect(option('--ema-horizon')?.defaultValue, name).toBe(EMA_HORIZON);
      expect(option('--ema-decay')?.defaultValue, name).toBe(EMA_DECAY);
      expect([defaults.emaHorizon, defaults.emaDecay]).toEqual([EMA_HORIZON, EMA_DECAY]);
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

  it.each(['batchSize', 'labelSmoothing'] as const)("%s is the preset's unless given, and the help names each preset's", (key) => {
    const flag = { batchSize: '--batch-size', labelSmoothing: '--label-smoothing' }[key];
    for (const command of ['train', 'coordinator']) {
      const option = buildProgram()
        .commands.find((c) => c.name() === command)
        ?.options.find((o) => o.long === flag);
      expect(option?.defaultValue).toBeUndefined();
      for (const name of PRESET_NAMES) {
        const value = getPreset(name)[key];
        expect(runSettings({ preset: name })[key], name).toBe(value);
        expect(option?.description, name).toContain(`${name} ${value}`);
        expect(runSettings({ preset: name, [key]: 0.25 })[key]).toBe(0.25);
      }
    }
  });

  it('conv trains at 64 images per step with two workers and without label smoothing, mlp with smoothing 0.1 (docs/quality.md)', () => {
    expect([getPreset('conv').batchSize, getPreset('conv').labelSmoothing]).toEqual([32, 0]);
    expect([getPreset('mlp').batchSize, getPreset('mlp').labelSmoothing]).toEqual([64, 0.1]);
  });
});
