import { describe, expect, it } from 'vitest';
import { Rng } from '@ganfleet/shared/data';
import { getPreset, initParams, specsOf } from '@ganfleet/shared/model';
import { GeneratorAverage } from './generatorAverage.js';

describe('GeneratorAverage', () => {
  it.each([1 / 9, 1 / 3])("is the exponential moving average of G's trainable weights with the warm-up min(decay, (1+t)/(1+1/h+t)), h = %s", (h) => {
    const preset = getPreset('mlp');
    const params = initParams(preset, 3);
    const name = 'g/dense2/bias';
    const average = new GeneratorAverage(preset, params, 0.9, h);
    expect([...average.values.keys()]).toEqual(specsOf(preset, 'G').map((s) => s.name));
    const rng = new Rng(1);
    let expected = Array.from(params.get(name) as Float32Array);
    for (let t = 1; t <= 40; t++) {
      const p = params.get(name) as Float32Array;
      rng.fillNormal(p);
      const beta = Math.min(0.9, (1 + t) / (1 + 1 / h + t));
      expected = expected.map((e, i) => beta * e + (1 - beta) * (p[i] as number));
      average.update(params, t);
    }
    const got = average.values.get(name) as Float32Array;
    got.forEach((v, i) => expect(v).toBeCloseTo(expected[i] as number, 5));
    expect(average.decayAt(1)).toBeCloseTo(2 / (2 + 1 / h), 12);
    expect(average.decayAt(1000)).toBe(0.9);
  });
});
