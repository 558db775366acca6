import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The shared-secret check and its brute-force brake. Tokens are compared as SHA-256 digests
 * with timingSafeEqual, so neither content nor length leaks through timing.
 */
export class AuthGate {
  private readonly failures = new Map<string, number[]>();

  constructor(
    /** Undefined: no token required (loopback-only runs). */
    readonly token: string | undefined,
    /** Failed attempts per address per minute before that address is refused outright. */
    private readonly maxFailuresPerMinute = 5,
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

  recordFailure(remote: string, now = Date.now()): void {
    const recent = this.recent(remote, now);
    recent.push(now);
    this.failures.set(remote, recent);
  }

  /** True while `remote` has used up its failed attempts for the last minute. */
  blocked(remote: string, now = Date.now()): boolean {
    const recent = this.recent(remote, now);
    if (recent.length === 0) this.failures.delete(remote);
    return recent.length >= this.maxFailuresPerMinute;
  }

  private recent(remote: string, now: number): number[] {
    return (this.failures.get(remote) ?? []).filter((t) => now - t < 60_000);
  }
}

/** Loopback binds may run without a token; anything else must have one. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
