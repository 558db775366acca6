import type { IncomingMessage } from 'node:http';
import type { GanErrorCode } from '@ganfleet/shared/wire';
import type { Logger } from '@ganfleet/shared/log';
import type { AuthGate, AuthVerdict } from './authGate.js';
import type { RunEvents } from './events.js';

/** How the edge turns a request away: an HTTP status with a one-line body. */
export interface Refusal {
  status: number;
  message: string;
  headers?: Record<string, string>;
}

export type Admission = { ok: true; url: URL } | { ok: false; refusal: Refusal };

/**
 * The one door for HTTP requests and WebSocket upgrades, before anything else is read: the
 * request target must parse (400), the token must be right (401; 429 once the address or the
 * server is over its failure budget, never for the right token). The token comes as
 * `Authorization: Bearer <token>` or `?token=`. Each failure is announced (authFailed) and
 * logged at warn with a code, until its budget is spent: then one line says so.
 */
export class RequestGate {
  constructor(
    private readonly auth: AuthGate,
    private readonly events: RunEvents,
    private readonly log: Logger,
  ) {}

  admit(req: IncomingMessage): Admission {
    const remote = req.socket.remoteAddress ?? 'unknown';
    const what = req.headers.upgrade === undefined ? 'HTTP request' : 'connection';
    const url = parseTarget(req.url ?? '/');
    if (!url) {
      // The target is not logged: it is the peer's text, and might hold someone's token.
      this.failed(this.auth.fail(remote), { code: 'BAD_MESSAGE', remote }, `${what} refused: malformed request target`);
      return { ok: false, refusal: { status: 400, message: 'malformed request target' } };
    }
    const given = tokenOf(req, url);
    const verdict = this.auth.check(given, remote);
    if (verdict.kind === 'accepted') return { ok: true, url };
    const reason = given === undefined ? 'a token is required' : 'invalid token';
    this.failed(verdict, { code: 'UNAUTHORIZED', remote, path: url.pathname }, `${what} refused: ${reason}`);
    if (verdict.kind === 'throttled')
      return { ok: false, refusal: { status: 429, message: 'too many failed authentications', headers: { 'retry-after': '60' } } };
    return {
      ok: false,
      refusal: { status: 401, message: `${reason}: Authorization: Bearer <token>, or ?token=<token>`, headers: { 'www-authenticate': 'Bearer' } },
    };
  }

  private failed(verdict: Exclude<AuthVerdict, { kind: 'accepted' }>, fields: { code: GanErrorCode; remote: string; path?: string }, msg: string): void {
    this.events.emit('authFailed', { remote: fields.remote });
    if (verdict.kind === 'refused') this.log.warn(fields, msg);
    else if (verdict.first) {
      const from = verdict.scope === 'address' ? 'this address' : 'all addresses together';
      this.log.warn(
        { code: fields.code, remote: fields.remote, scope: verdict.scope },
        `too many failed authentications from ${from}: wrong or missing tokens get 429 for the rest of the minute`,
      );
    }
  }
}

/** The request target as a URL; undefined when it does not parse or holds malformed percent-encoding. */
function parseTarget(target: string): URL | undefined {
  try {
    decodeURIComponent(target);
    return new URL(target, 'http://localhost');
  } catch {
    return undefined;
  }
}

function tokenOf(req: IncomingMessage, url: URL): string | undefined {
  const header = req.headers.authorization;
  if (header !== undefined) return /^Bearer\s+(.+)$/i.exec(header)?.[1] ?? '';
  return url.searchParams.get('token') ?? undefined;
}
