import { describe, expect, it } from 'vitest';
import { FrameJoiner } from './frameJoiner.js';

/** `n` bytes counting up from `start`, cut into pieces of `sizes` (the rest in the last). */
function fragments(n: number, start: number, sizes: number[]): Uint8Array[] {
  const all = Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);
  const out: Uint8Array[] = [];
  let at = 0;
  for (const s of sizes) {
    out.push(all.subarray(at, at + s));
    at += s;
  }
  out.push(all.subarray(at));
  return out;
}

const expected = (n: number, start: number) => Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);

describe('FrameJoiner', () => {
  it('joins fragments into one message, byte for byte', () => {
    const joiner = new FrameJoiner();
    const bytes = joiner.join(fragments(1000, 3, [1, 511, 7])) as Uint8Array;
    expect(bytes).toEqual(expected(1000, 3));
  });

  it('passes a single fragment and anything that is not fragments through as it is', () => {
    const joiner = new FrameJoiner();
    const one = new Uint8Array(5);
    expect(joiner.join([one])).toBe(one);
    expect(joiner.join(one)).toBe(one);
    const odd = [one, 'text'];
    expect(joiner.join(odd)).toBe(odd);
    expect(joiner.join([])).toEqual([]);
  });

  it('reserves room in its reused buffer, lent like a joined message, for a frame copied out of shared memory', () => {
    const joiner = new FrameJoiner();
    const first = joiner.join(fragments(800, 0, [300])) as Uint8Array;
    joiner.release();
    const room = joiner.reserve(600);
    expect(room.buffer).toBe(first.buffer);
    expect(room.byteLength).toBe(600);
    expect(joiner.owns(room)).toBe(true);
    // Lent until released: a message meanwhile goes elsewhere.
    const meanwhile = joiner.join(fragments(500, 3, [200])) as Uint8Array;
    expect(meanwhile.buffer).not.toBe(first.buffer);
    joiner.release();
    expect(joiner.reserve(900).buffer).not.toBe(first.buffer);
  });

  it('reuses its buffer once a message is released, for messages of that size or smaller', () => {
    const joiner = new FrameJoiner();
    const first = joiner.join(fragments(800, 0, [300])) as Uint8Array;
    joiner.release();
    const second = joiner.join(fragments(500, 9, [200])) as Uint8Array;
    expect(second.buffer).toBe(first.buffer);
    expect(second.byteLength).toBe(500);
    expect(second).toEqual(expected(500, 9));
    joiner.release();
    const larger = joiner.join(fragments(900, 1, [450])) as Uint8Array;
    expect(larger.buffer).not.toBe(first.buffer);
    expect(larger).toEqual(expected(900, 1));
  });

  it('never writes into a message still lent: one that arrives meanwhile gets a buffer of its own', () => {
    const joiner = new FrameJoiner();
    const held = joiner.join(fragments(600, 0, [100])) as Uint8Array;
    const meanwhile = joiner.join(fragments(600, 77, [100])) as Uint8Array;
    expect(meanwhile.buffer).not.toBe(held.buffer);
    expect(held).toEqual(expected(600, 0));
    expect(meanwhile).toEqual(expected(600, 77));
    expect(joiner.owns(held)).toBe(true);
    expect(joiner.owns(meanwhile)).toBe(false);
  });

  it('takes back a buffer that went to another thread and came back; a moved buffer is not reused', () => {
    const joiner = new FrameJoiner();
    const bytes = joiner.join(fragments(256, 0, [128])) as Uint8Array;
    const moved = structuredClone(bytes.buffer, { transfer: [bytes.buffer as ArrayBuffer] });
    joiner.adopt(moved as ArrayBuffer);
    // The detached original, released after the adoption, must not displace it.
    joiner.release();
    const again = joiner.join(fragments(256, 6, [128])) as Uint8Array;
    expect(again.buffer).toBe(moved);
    expect(again).toEqual(expected(256, 6));
    joiner.release();
    // Moved away and never given back: the next message gets a new buffer.
    structuredClone(again.buffer, { transfer: [again.buffer as ArrayBuffer] });
    joiner.release();
    const fresh = joiner.join(fragments(256, 7, [128])) as Uint8Array;
    expect(fresh.byteLength).toBe(256);
    expect(fresh).toEqual(expected(256, 7));
  });
});
