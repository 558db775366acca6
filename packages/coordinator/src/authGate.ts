import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';

/** Failed authentications allowed per minute before wrong tokens are refused with 429 instead of 401. */
export interface FailureLimits {
  /** From one address. */
  perAddress: number;
  /** From all addresses together (those already over their own limit not counted). */
  total: number;
}

/** What the gate makes of one request: the right token always gets in, whatever anyone else did. */
export type AuthVerdict =
  | { kind: 'accepted' }
  /** A failure within the budget: refuse with 401 and log it. */
  | { kind: 'refused' }
  /** A failure over the budget of the address or of the whole server: refuse cheaply (429); `first` once per window, for one log line. */
  | { kind: 'throttled'; scope: 'address' | 'all'; first: boolean };

const WINDOW_MS = 60_000;

interface Window {
  start: number;
  count: number;
}

/**
 * The shared-secret check and its failure budget. Tokens are compared as SHA-256 digests with
 * timingSafeEqual, so neither content nor length leaks through timing. Failures are counted in
 * one-minute windows per address and for the whole server; over either budget a wrong or missing
 * token costs no log line, but the right token is never turned away: one typo behind a NAT must
 * not lock out everyone sharing its address.
 */
export class AuthGate {
  private readonly byAddress = new Map<string, Window>();
  private all: Window = { start: 0, count: 0 };

  constructor(
    /** Undefined: no token required (loopback-only runs). */
    readonly token: string | undefined,
    private readonly limits: FailureLimits = { perAddress: 5, total: 100 },
  ) {}

  static generateToken(): string {
    return randomBytes(24).toString('base64url');
  }

  accepts(given: string | undefined): boolean {
    if (this.token === undefined) return true;
    const a = createHash('sha256').update(this.token).digest();
    const b = createHash('sha256')
      .update(given ?? '')
      .digest();
    return timingSafeEqual(a, b) && given !== undefined;
  }

  /** Lets the right token in; counts anything else as a failure of `remote`. */
  check(given: string | undefined, remote: string, now = Date.now()): AuthVerdict {
    return this.accepts(given) ? { kind: 'accepted' } : this.fail(remote, now);
  }

  /** Counts a failure (a wrong token, or a request too malformed to carry one) against `remote` and the server. */
  fail(remote: string, now = Date.now()): Exclude<AuthVerdict, { kind: 'accepted' }> {
    const mine = this.byAddress.get(remote);
    if (mine && now - mine.start < WINDOW_MS && mine.count >= this.limits.perAddress) {
      return { kind: 'throttled', scope: 'address', first: mine.count++ === this.limits.perAddress };
    }
    if (now - this.all.start >= WINDOW_MS) {
      this.all = { start: now, count: 0 };
      // Old windows go once a minute; new addresses only enter within the total budget, so the map stays small.
      for (const [address, w] of this.byAddress) if (now - w.start >= WINDOW_MS) this.byAddress.delete(address);
    }
    if (this.all.count >= this.limits.total) return { kind: 'throttled', scope: 'all', first: this.all.count++ === this.limits.total };
    this.all.count += 1;
    if (mine && now - mine.start < WINDOW_MS) mine.count += 1;
    else this.byAddress.set(remote, { start: now, count: 1 });
    return { kind: 'refused' };
  }
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * Loopback binds may run without a token; anything else must have one. Decided on the parsed
 * address (127.0.0.0/8, ::1, their IPv4-mapped forms), so a name such as `127.attacker.example`
 * or a shorthand such as `127.1` is not loopback; the one name trusted is `localhost`.
 */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const family = isIP(host);
  return family !== 0 && LOOPBACK.check(host, family === 4 ? 'ipv4' : 'ipv6');
}
