import { describe, expect, it } from 'vitest';
import { NODE_FLAGS, missingNodeFlags } from './nodeFlags.js';

describe('missingNodeFlags', () => {
  it('names the flags a process was started without, and none when all are there', () => {
    expect(missingNodeFlags(['--import', 'tsx'])).toEqual(NODE_FLAGS);
    expect(missingNodeFlags(['--inspect', ...NODE_FLAGS])).toEqual([]);
    // A different value is not the flag.
    expect(missingNodeFlags(['--initial-old-space-size=16'])).toEqual(NODE_FLAGS);
  });
});
