/* Messages either side may send at any time. */
import type { GanErrorCode } from './errors.js';
import { MAX_TEXT_LENGTH, type Fields } from './fields.js';

/** Orderly goodbye; the sender closes the connection after it. */
export interface Bye {
  type: 'bye';
  reason: string;
}

/** A failure report; `code` decides the WebSocket close code (closeCodeFor) if the sender then closes. */
export interface ErrorMessage {
  type: 'error';
  code: GanErrorCode;
  message: string;
}

export function readBye(f: Fields): Bye {
  return { type: 'bye', reason: f.string('reason', MAX_TEXT_LENGTH) };
}

export function readError(f: Fields): ErrorMessage {
  return { type: 'error', code: f.errorCode('code'), message: f.string('message', MAX_TEXT_LENGTH) };
}
