/*
 * Frames through memory shared with a worker on the parent's machine (link/sharedRegion.ts): the
 * welcome's offer and the worker's answer. From then on the frames are announced by doorbells in
 * the region itself, not on the socket.
 */
import { MAX_NAME_LENGTH, MAX_TEXT_LENGTH, badMessage, type Fields } from './fields.js';

/** In a welcome, to a worker on the parent's machine that said it can map shared memory. */
export interface SharedOffer {
  /** A file in /dev/shm that only the parent's user can open. */
  path: string;
  /** Bytes each way: the parent's frames in the first half of the file, the worker's in the second. */
  bytes: number;
}

/** Worker → parent, to an offer: the nonce at the start of the region (proof that it mapped that file), or why not. */
export interface SharedAnswer {
  type: 'sharedAnswer';
  nonce?: Uint8Array;
  declined?: string;
}

/** Bytes of the nonce an offer's region starts with. */
export const NONCE_BYTES = 16;

/** The largest region half an offer may name (the largest model's frames are a few hundred MB). */
export const MAX_SHARED_BYTES = 2 ** 34;

export function readSharedOffer(s: Fields): SharedOffer {
  return { path: s.string('path', MAX_NAME_LENGTH), bytes: s.integer('bytes', 1, MAX_SHARED_BYTES) };
}

export function readSharedAnswer(f: Fields): SharedAnswer {
  const nonce = f.optionalBytes('nonce');
  const declined = f.optionalString('declined', MAX_TEXT_LENGTH);
  if ((nonce === undefined) === (declined === undefined)) throw badMessage(f.path, 'expected either nonce or declined');
  if (nonce && nonce.byteLength !== NONCE_BYTES) throw badMessage(f.at('nonce'), `expected ${NONCE_BYTES} bytes, got ${nonce.byteLength}`);
  return { type: 'sharedAnswer', ...(nonce ? { nonce } : { declined }) };
}
