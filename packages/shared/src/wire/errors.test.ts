import { describe, expect, it } from 'vitest';
import { ERROR_CODES, GanError, closeCodeFor, isGanError, isGanErrorCode } from './errors.js';

describe('GanError', () => {
  it('carries code, name, message and cause', () => {
    const cause = new Error('disk');
    const e = new GanError('CHECKPOINT_CORRUPT', 'bad header', { cause });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('GanError');
    expect(e.code).toBe('CHECKPOINT_CORRUPT');
    expect(e.message).toBe('bad header');
    expect(e.cause).toBe(cause);
    expect(isGanError(e)).toBe(true);
    expect(isGanError(new Error('x'))).toBe(false);
    expect(isGanError({ code: 'INTERNAL', message: 'x' })).toBe(false);
  });

  it('lists every code once', () => {
    expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
    expect(ERROR_CODES).toHaveLength(22);
    expect(ERROR_CODES.every(isGanErrorCode)).toBe(true);
    expect(isGanErrorCode('NOPE')).toBe(false);
    expect(isGanErrorCode('toString')).toBe(false);
    expect(isGanErrorCode(3)).toBe(false);
  });

  it('maps codes to WebSocket close codes', () => {
    const byClose = new Map<number, string[]>();
    for (const code of ERROR_CODES) byClose.set(closeCodeFor(code), [...(byClose.get(closeCodeFor(code)) ?? []), code]);
    expect(byClose.get(1008)?.sort()).toEqual(
      ['DATASET_MISMATCH', 'NON_FINITE', 'OUTLIER', 'OUT_OF_RANGE', 'STALE_REPLY', 'STRAGGLER', 'UNAUTHORIZED', 'VERSION_MISMATCH'].sort(),
    );
    expect(byClose.get(1002)?.sort()).toEqual(['BAD_FRAME', 'BAD_MESSAGE', 'BAD_TENSOR', 'UNKNOWN_TYPE'].sort());
    expect(byClose.get(1009)).toEqual(['TOO_LARGE']);
    expect(byClose.get(1013)).toEqual(['TOO_MANY_CONNECTIONS']);
    expect(byClose.get(1011)).toHaveLength(ERROR_CODES.length - 14);
    expect([...byClose.keys()].sort()).toEqual([1002, 1008, 1009, 1011, 1013]);
  });
});
