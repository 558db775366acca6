import { describe, expect, it } from 'vitest';
import { Rng } from '@ganfleet/shared/data';
import { getPreset, initParams, poolBatchNormStats, specsOf } from '@ganfleet/shared/model';
import { Adam, type AdamConfig } from './adam.js';
import { sameBytes } from '../../../tests/helpers/bytes.js';
import { ParamStore, batchContribution } from './paramStore.js';

const ADAM: AdamConfig = { learningRate: 2e-4, beta1: 0.5, beta2: 0.999, epsilon: 1e-7 };

function moments(values: number[]): [number, number] {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return [mean, values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length];
}

describe('poolBatchNormStats', () => {
  it('equals the statistics of the concatenated batches', () => {
    const rng = new Rng(3);
    const batches = [5, 11, 2].map((n, k) => Array.from({ length: n }, () => rng.normal() * (k + 1) + k));
    const parts = batches.map((b) => {
      const [m, v] = moments(b);
      return { samples: b.length, stats: Float32Array.from([m, v]) };
    });
    const [mean, variance] = moments(batches.flat());
    const pooled = poolBatchNormStats(parts, 1);
    expect(pooled[0]).toBeCloseTo(mean, 5);
    expect(pooled[1]).toBeCloseTo(variance, 4);
  });
});

describe('ParamStore', () => {
  it('applies the sample-weighted average of the contributions, as computed independently in float64', () => {
    const preset = getPreset('mlp');
    const rng = new Rng(4);
    const specs = specsOf(preset, 'D');
    const parts = [3, 8, 5].map((samples) => ({
      samples,
      loss: rng.uniform(),
      grads: new Map(specs.map((s) => [s.name, rng.fillNormal(new Float32Array(s.shape.reduce((a, b) => a * b, 1)))])),
    }));
    const store = new ParamStore(preset, initParams(preset, 1), ADAM);
    const { loss, samples } = store.apply('D', parts.map(batchContribution));
    expect(samples).toBe(16);
    expect(loss).toBeCloseTo(parts.reduce((a, p) => a + p.samples * p.loss, 0) / 16, 12);
    // The reference: average in float64, then one plain Adam step.
    const averaged = new Map(
      specs.map((s) => {
        const out = new Float32Array((parts[0]?.grads.get(s.name) as Float32Array).length);
        for (let i = 0; i < out.length; i++) out[i] = parts.reduce((a, p) => a + p.samples * (p.grads.get(s.name)?.[i] as number), 0) / 16;
        return [s.name, out];
      }),
    );
    const expected = initParams(preset, 1);
    new Adam(ADAM).apply(expected, averaged);
    for (const s of specs) {
      const got = store.params.get(s.name) as Float32Array;
      const want = expected.get(s.name) as Float32Array;
      // Adam moves each weight by about lr: the sum's float32 rounding shifts that by far less than 1e-3 of it.
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs((got[i] as number) - (want[i] as number)));
      expect(worst, s.name).toBeLessThan(ADAM.learningRate * 1e-3);
    }
  });

  it('gives each network its own learning rate when asked, and the shared one otherwise', () => {
    const preset = getPreset('mlp');
    const rng = new Rng(9);
    const gradsOf = (group: 'G' | 'D') =>
      new Map(specsOf(preset, group).map((s) => [s.name, rng.fillNormal(new Float32Array(s.shape.reduce((a, b) => a * b, 1)))]));
    const dGrads = gradsOf('D');
    const gGrads = gradsOf('G');
    const config = { ...ADAM, learningRate: 1e-3 };
    const run = (adam: AdamConfig) => {
      const store = new ParamStore(preset, initParams(preset, 1), adam);
      store.apply('D', [batchContribution({ samples: 4, loss: 0, grads: dGrads })]);
      store.apply('G', [batchContribution({ samples: 4, loss: 0, grads: gGrads })]);
      return store.params;
    };
    // The reference: one plain Adam per network at the rate it should have.
    const expected = (lrD: number, lrG: number) => {
      const params = initParams(preset, 1);
      new Adam({ ...config, learningRate: lrD }).apply(params, dGrads);
      new Adam({ ...config, learningRate: lrG }).apply(params, gGrads);
      return params;
    };
    const same = (a: Map<string, Float32Array>, b: Map<string, Float32Array>) => [...a].every(([n, v]) => v.every((x, i) => x === b.get(n)?.[i]));
    expect(same(run({ ...config, networkLearningRates: { D: 1e-4 } }), expected(1e-4, 1e-3))).toBe(true);
    expect(same(run({ ...config, networkLearningRates: { G: 3e-3 } }), expected(1e-3, 3e-3))).toBe(true);
    expect(same(run(config), expected(1e-3, 1e-3))).toBe(true);
    expect(same(run(config), expected(1e-4, 1e-3))).toBe(false);
  });
});

describe("ParamStore's pending Adam step", () => {
  const preset = getPreset('mlp');
  const rng = new Rng(12);
  const gGrads = [1, 2].map(() => new Map(specsOf(preset, 'G').map((s) => [s.name, rng.fillNormal(new Float32Array(s.shape.reduce((a, b) => a * b, 1)))])));
  const round = (store: ParamStore, k: number) => store.apply('G', [batchContribution({ samples: 4, loss: 1, grads: gGrads[k] as Map<string, Float32Array> })]);
  const makeStore = () => new ParamStore(preset, initParams(preset, 1), ADAM, 0.9, { decay: 0.9, horizon: 0.5 });

  it('is carried out as far as settled() asks, and no further; in pieces it ends bit for bit where one eager step (with the average) ends', () => {
    const eager = makeStore();
    round(eager, 0);
    // The reference: the plain Adam of one network and the average's update, on a copy of the initial parameters.
    const expected = initParams(preset, 1);
    const adam = new Adam(ADAM);
    adam.apply(expected, gGrads[0] as Map<string, Float32Array>);
    for (const s of specsOf(preset, 'G')) expect(sameBytes(eager.params.get(s.name), expected.get(s.name)), s.name).toBe(true);

    const pieces = makeStore();
    const initial = initParams(preset, 1);
    round(pieces, 0);
    for (const s of specsOf(preset, 'G')) {
      const live = pieces.settled(s.name, 0);
      const want = expected.get(s.name) as Float32Array;
      const before = initial.get(s.name) as Float32Array;
      const cut = Math.floor(live.length / 3);
      pieces.settled(s.name, cut);
      expect(sameBytes(live.subarray(0, cut), want.subarray(0, cut)), s.name).toBe(true);
      expect(sameBytes(live.subarray(cut), before.subarray(cut)), s.name).toBe(true);
      pieces.settled(s.name, live.length);
    }
    for (const s of specsOf(preset, 'G')) expect(sameBytes(pieces.params.get(s.name), expected.get(s.name)), s.name).toBe(true);
    for (const [name, avg] of eager.average?.values ?? []) expect(sameBytes(pieces.average?.values.get(name), avg), name).toBe(true);
    for (const [name, slot] of eager.adam.G.slots) expect(sameBytes(pieces.adam.G.slots.get(name)?.v, slot.v), name).toBe(true);
    expect(pieces.adamMs).toBeGreaterThan(0);
  });

  it('copySettled writes a range final into a copy (computing it there where the step is pending): in pieces, skipping ahead, and again', () => {
    const eager = makeStore();
    round(eager, 0);
    const copies = makeStore();
    round(copies, 0);
    for (const s of specsOf(preset, 'G')) {
      const want = eager.params.get(s.name) as Float32Array;
      const n = want.length;
      const [a, b] = [Math.floor(n / 4), Math.floor(n / 2)];
      const into = new Float32Array(n).fill(Number.NaN);
      copies.settled(s.name, a);
      // [0, a) already final, [a, b) computed now, [b, n) after a piece skipped: every part lands in the copy.
      copies.copySettled(s.name, 0, b, into.subarray(0, b));
      copies.copySettled(s.name, b + 1, n, into.subarray(b + 1, n));
      copies.copySettled(s.name, b, b + 1, into.subarray(b, b + 1));
      expect(sameBytes(into, want), s.name).toBe(true);
      const again = new Float32Array(n);
      copies.copySettled(s.name, 0, n, again);
      expect(sameBytes(again, want), s.name).toBe(true);
    }
    for (const [name, values] of eager.params) expect(sameBytes(copies.params.get(name), values), name).toBe(true);
    for (const [name, avg] of eager.average?.values ?? []) expect(sameBytes(copies.average?.values.get(name), avg), name).toBe(true);
  });

  it('a half-carried-out step is finished before the next round is combined, and before any other read', () => {
    const eager = makeStore();
    round(eager, 0);
    void eager.params;
    round(eager, 1);
    const lazy = makeStore();
    round(lazy, 0);
    const first = specsOf(preset, 'G')[0]?.name as string;
    lazy.settled(first, 10);
    round(lazy, 1);
    expect(lazy.adam.G.t).toBe(2);
    for (const [name, values] of eager.params) expect(sameBytes(lazy.params.get(name), values), name).toBe(true);
    for (const [name, avg] of eager.average?.values ?? []) expect(sameBytes(lazy.average?.values.get(name), avg), name).toBe(true);
  });
});

describe('ParamStore commits a round only when it stays finite', () => {
  it('a contribution of 1e37 (finite, so no wire check catches it) is refused with NON_FINITE and changes nothing', () => {
    const preset = getPreset('mlp');
    const store = new ParamStore(preset, initParams(preset, 1), ADAM);
    const honest = new Map(specsOf(preset, 'G').map((s) => [s.name, new Float32Array(s.shape.reduce((a, b) => a * b, 1)).fill(0.01)]));
    store.apply('G', [batchContribution({ samples: 4, loss: 1, grads: honest })]);
    const before = new Map([...store.params].map(([k, v]) => [k, v.slice()]));
    const moments = new Map([...store.adam.G.slots].map(([k, s]) => [k, { m: s.m.slice(), v: s.v.slice() }]));
    const version = store.version;
    const poisoned = new Map([...honest].map(([k, v]) => [k, k === 'g/dense3/kernel' ? new Float32Array(v.length).fill(1e37) : v]));
    expect(() =>
      store.apply('G', [batchContribution({ samples: 4, loss: 1, grads: honest }), batchContribution({ samples: 4, loss: 1, grads: poisoned })]),
    ).toThrow(expect.objectContaining({ code: 'NON_FINITE' }));
    expect(store.version).toBe(version);
    expect(store.adam.G.t).toBe(1);
    for (const [k, v] of before) expect(sameBytes(store.params.get(k), v), k).toBe(true);
    for (const [k, s] of moments) {
      expect(sameBytes(store.adam.G.slots.get(k)?.m, s.m), k).toBe(true);
      expect(sameBytes(store.adam.G.slots.get(k)?.v, s.v), k).toBe(true);
    }
    // The next honest round applies normally.
    store.apply('G', [batchContribution({ samples: 4, loss: 1, grads: honest })]);
    expect(store.adam.G.t).toBe(2);
    for (const values of store.params.values()) expect(values.every(Number.isFinite)).toBe(true);
  });

  it('median aggregation: an extreme but in-range contribution among four does not flip the direction the honest three chose', () => {
    const preset = getPreset('mlp');
    const rng = new Rng(2);
    const grads = () => new Map(specsOf(preset, 'D').map((s) => [s.name, rng.fillNormal(new Float32Array(s.shape.reduce((a, b) => a * b, 1)))]));
    const honest = [grads(), grads(), grads()];
    const attacker = new Map([...honest[0]!].map(([k, v]) => [k, new Float32Array(v.length).fill(1e4)]));
    const robust = new ParamStore(preset, initParams(preset, 1), ADAM, 0.9, undefined, { mode: 'median', trim: 1 });
    robust.apply(
      'D',
      [...honest, attacker].map((g) => batchContribution({ samples: 4, loss: 1, grads: g })),
    );
    const plain = new ParamStore(preset, initParams(preset, 1), ADAM, 0.9, undefined, { mode: 'median', trim: 1 });
    plain.apply(
      'D',
      honest.map((g) => batchContribution({ samples: 4, loss: 1, grads: g })),
    );
    // Adam's first step moves every weight by about lr whatever the gradient's size; what the
    // attacker must not do is flip the direction the honest majority chose.
    const initial = initParams(preset, 1);
    let agree = 0;
    let total = 0;
    for (const s of specsOf(preset, 'D')) {
      const a = robust.params.get(s.name) as Float32Array;
      const b = plain.params.get(s.name) as Float32Array;
      const p0 = initial.get(s.name) as Float32Array;
      for (let i = 0; i < a.length; i++) {
        total++;
        if (Math.sign((a[i] as number) - (p0[i] as number)) === Math.sign((b[i] as number) - (p0[i] as number))) agree++;
      }
    }
    expect(agree / total).toBeGreaterThan(0.6);
  });
});
