import { describe, expect, it } from 'vitest';
import { AuthGate, isLoopback } from './authGate.js';

describe('AuthGate', () => {
  it('accepts only the exact token; without a token configured, anyone', () => {
    const gate = new AuthGate('s3cret');
    expect(gate.accepts('s3cret')).toBe(true);
    for (const wrong of [undefined, '', 's3cre', 's3cret ', 'S3CRET']) expect(gate.accepts(wrong), String(wrong)).toBe(false);
    expect(new AuthGate(undefined).accepts(undefined)).toBe(true);
  });

  it('throttles an address over its budget, but never the right token from it', () => {
    const gate = new AuthGate('s3cret', { perAddress: 3, total: 100 });
    const t = 1_000_000;
    expect([1, 2, 3].map(() => gate.check('guess', '10.0.0.1', t).kind)).toEqual(['refused', 'refused', 'refused']);
    expect(gate.check('guess', '10.0.0.1', t)).toEqual({ kind: 'throttled', scope: 'address', first: true });
    expect(gate.check(undefined, '10.0.0.1', t)).toEqual({ kind: 'throttled', scope: 'address', first: false });
    expect(gate.check('s3cret', '10.0.0.1', t).kind).toBe('accepted');
    // Another address has its own budget.
    expect(gate.check('guess', '10.0.0.2', t).kind).toBe('refused');
    // A minute later the address starts over.
    expect(gate.check('guess', '10.0.0.1', t + 60_000).kind).toBe('refused');
  });

  it('throttles everyone once all addresses together are over the total budget', () => {
    const gate = new AuthGate('s3cret', { perAddress: 5, total: 10 });
    const t = 5_000_000;
    // 25 addresses × 5 guesses: only the first 10 failures are answered in full.
    const kinds = Array.from({ length: 25 }, (_, a) => Array.from({ length: 5 }, () => gate.check('guess', `10.0.1.${a}`, t).kind)).flat();
    expect(kinds.filter((k) => k === 'refused')).toHaveLength(10);
    expect(kinds.filter((k) => k === 'throttled')).toHaveLength(115);
    expect(gate.check('s3cret', '10.0.1.24', t).kind).toBe('accepted');
    expect(gate.check('guess', '10.0.9.9', t + 60_000).kind).toBe('refused');
  });

  it('does not let an address already over its own budget use up the total', () => {
    const gate = new AuthGate('s3cret', { perAddress: 2, total: 5 });
    for (let i = 0; i < 50; i++) gate.check('guess', '10.0.0.1', 0);
    expect(gate.check('guess', '10.0.0.2', 0).kind).toBe('refused');
  });
});

describe('isLoopback', () => {
  it('decides on the parsed address, not on how the name starts', () => {
    for (const host of ['127.0.0.1', '127.255.0.9', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost']) expect(isLoopback(host), host).toBe(true);
    for (const host of [
      '127.attacker.example',
      '127.0.0.1.nip.io',
      '127.1',
      '127.000.000.001',
      '0.0.0.0',
      '::',
      '128.0.0.1',
      '10.0.0.1',
      'LOCALHOST.',
      'localhost.attacker.example',
      '',
    ])
      expect(isLoopback(host), host).toBe(false);
  });
});
