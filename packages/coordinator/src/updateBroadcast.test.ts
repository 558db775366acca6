import { describe, expect, it } from 'vitest';
import { Rng } from '@ganfleet/shared/data';
import { type ModelPreset, getPreset, initParams, specsOf } from '@ganfleet/shared/model';
import { FRAGMENT_ABOVE, FRAGMENT_BYTES } from '@ganfleet/shared/link';
import { concat, encodeTensors } from '@ganfleet/shared/wire';
import { ParamStore, batchContribution } from './paramStore.js';
import { UpdateBroadcast } from './updateBroadcast.js';

const ADAM = { learningRate: 2e-4, beta1: 0.5, beta2: 0.999, epsilon: 1e-7 };

/** A store whose D round is applied but not yet carried out (its Adam step pending). */
function storeAfterRound(preset: ModelPreset): ParamStore {
  const rng = new Rng(5);
  const store = new ParamStore(preset, initParams(preset, 3), ADAM);
  const grads = new Map(specsOf(preset, 'D').map((s) => [s.name, rng.fillNormal(new Float32Array(s.shape.reduce((a, b) => a * b, 1)))]));
  store.apply('D', [batchContribution({ samples: 8, loss: 1, grads })]);
  return store;
}

/** The parameters changed since `version`, encoded whole: what the body must hold. */
function encodedWhole(preset: ModelPreset, store: ParamStore, dtype: 'float32' | 'float16', version = 0) {
  const names = store.changedSince(version);
  return encodeTensors(
    names.map((name) => ({ name, shape: preset.params.find((s) => s.name === name)?.shape as number[], values: store.params.get(name) as Float32Array })),
    dtype,
  );
}

describe('UpdateBroadcast', () => {
  it("streams a float32 body above FRAGMENT_ABOVE in pieces of FRAGMENT_BYTES, each written once the store's Adam step reached it, the same bytes to every socket", async () => {
    const preset = getPreset('conv');
    const store = storeAfterRound(preset);
    const names = store.changedSince(0);
    const last = names.at(-1) as string;
    // A live view of the last tensor: it must still hold its old values when the first piece goes.
    const live = store.settled(last, 0);
    const before = live.slice();
    const broadcast = new UpdateBroadcast(preset);
    const round = broadcast.round(store);
    const body = round.bodyFor(0, 'float32');
    if (!body) throw new Error('expected a body');
    const got: { piece: Uint8Array; last: boolean }[][] = [[], []];
    let lastUntouchedAtFirstPiece: boolean | undefined;
    for (const pieces of got) {
      round.to(body, (piece, isLast) => {
        lastUntouchedAtFirstPiece ??= live.every((v, i) => Object.is(v, before[i]));
        pieces.push({ piece: piece.slice(), last: isLast });
      });
    }
    await round.stream();
    expect(lastUntouchedAtFirstPiece).toBe(true);
    // The independent encoding: the settled parameters, encoded whole.
    const whole = encodedWhole(preset, store, 'float32');
    expect(whole.data.byteLength).toBeGreaterThan(FRAGMENT_ABOVE);
    expect(body.manifest).toEqual(whole.manifest);
    for (const pieces of got) {
      expect(pieces.length).toBe(Math.ceil(whole.data.byteLength / FRAGMENT_BYTES));
      expect(pieces.length).toBeGreaterThan(1);
      expect(pieces.map((p) => p.last)).toEqual(pieces.map((_, i) => i === pieces.length - 1));
      expect(pieces.slice(0, -1).every((p) => p.piece.byteLength === FRAGMENT_BYTES)).toBe(true);
      expect(Buffer.from(concat(pieces.map((p) => p.piece))).equals(Buffer.from(whole.data))).toBe(true);
    }
    // The round's hold is released (the sockets' own holds come from WorkerConnection.request): the buffer is free again.
    expect(body.inFlight).toBe(0);
  });

  it.each(['float32', 'float16'] as const)('sends a %s body up to FRAGMENT_ABOVE whole, as one piece', async (dtype) => {
    const preset = getPreset('mlp');
    const store = storeAfterRound(preset);
    const round = new UpdateBroadcast(preset).round(store);
    const body = round.bodyFor(0, dtype);
    if (!body) throw new Error('expected a body');
    const pieces: { piece: Uint8Array; last: boolean }[] = [];
    round.to(body, (piece, last) => pieces.push({ piece: piece.slice(), last }));
    await round.stream();
    const whole = encodedWhole(preset, store, dtype);
    expect(body.manifest).toEqual(whole.manifest);
    expect(pieces.map((p) => p.last)).toEqual([true]);
    expect(Buffer.from(pieces[0]?.piece ?? []).equals(Buffer.from(whole.data))).toBe(true);
  });

  it.each([
    ['mlp', 'one piece'],
    ['conv', 'pieces'],
  ] as const)(
    "writes a float32 body (%s: %s) straight into its only destination's memory; with a second destination, into its own buffer; the memory's sink takes each piece as soon as it is final",
    async (name, _pieces) => {
      const preset = getPreset(name);
      const whole = encodedWhole(preset, storeAfterRound(preset), 'float32');
      for (const destinations of [1, 2]) {
        const store = storeAfterRound(preset);
        const round = new UpdateBroadcast(preset).round(store);
        const body = round.bodyFor(0, 'float32');
        if (!body) throw new Error('expected a body');
        const into = new Uint8Array(body.bytes.byteLength + 64).subarray(64);
        const pieces: Uint8Array[] = [];
        // Whether each piece, when handed over, already held the final bytes at its place; and which came last.
        const final: boolean[] = [];
        const last: boolean[] = [];
        let at = 0;
        round.to(
          body,
          (piece, isLast) => {
            pieces.push(piece);
            final.push(Buffer.from(piece).equals(Buffer.from(whole.data.subarray(at, at + piece.byteLength))));
            last.push(isLast);
            at += piece.byteLength;
          },
          into,
        );
        let socketPieces = 0;
        if (destinations === 2) round.to(body, () => (socketPieces += 1));
        await round.stream();
        expect(final.every(Boolean), 'every piece final when handed over').toBe(true);
        // One piece per Adam call at least: per parameter, and per socket frame within one.
        expect(pieces.length).toBeGreaterThanOrEqual(body.manifest.length);
        expect(pieces.length).toBeGreaterThan(socketPieces);
        expect(last).toEqual(pieces.map((_, i) => i === pieces.length - 1));
        const memory = destinations === 1 ? into : body.bytes;
        expect(
          pieces.every((p) => p.buffer === memory.buffer),
          `pieces are views of the ${destinations === 1 ? 'destination' : 'body'}`,
        ).toBe(true);
        expect(Buffer.from(memory).equals(Buffer.from(whole.data))).toBe(true);
        if (destinations === 2) expect(into.every((v) => v === 0)).toBe(true);
      }
    },
  );

  it('writes a float16 body whole before its header (the scales go in it), then sends it in pieces as a float32 one', async () => {
    const preset = getPreset('conv');
    const store = storeAfterRound(preset);
    const round = new UpdateBroadcast(preset).round(store);
    // All parameters (a worker that never synced): above FRAGMENT_ABOVE in float16 too.
    const body = round.bodyFor(-1, 'float16');
    if (!body) throw new Error('expected a body');
    const whole = encodedWhole(preset, store, 'float16', -1);
    expect(whole.data.byteLength).toBeGreaterThan(FRAGMENT_ABOVE);
    expect(body.manifest).toEqual(whole.manifest);
    const pieces: Uint8Array[] = [];
    round.to(body, (piece) => pieces.push(piece.slice()));
    await round.stream();
    expect(pieces.length).toBe(Math.ceil(whole.data.byteLength / FRAGMENT_BYTES));
    expect(Buffer.from(concat(pieces)).equals(Buffer.from(whole.data))).toBe(true);
  });
});
