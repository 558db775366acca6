import type WebSocket from 'ws';

/**
 * The largest frame a peer sends of a large message. The receiving ws copies each frame that spans
 * several socket reads into a buffer of the frame's size: buffers this size are served again and
 * again from the heap, where message-sized ones (tens of MB) were fresh memory, and so page
 * faults, every round; much smaller frames cost more per frame than they save (docs/benchmarks.md).
 */
export const FRAGMENT_BYTES = 1024 * 1024;

/**
 * Messages up to this size go as they are, a frame per part: the heap gives ws's buffers for them
 * back round after round already, and cutting them up only adds the receiver's join (measured with
 * `mlp`'s 2.2 MB messages); a relay's 4.4 MB float64 sums already cost its parent more whole than
 * cut up (docs/benchmarks.md).
 */
export const FRAGMENT_ABOVE = 4 * 1024 * 1024;

/** The largest frame of a message of `total` bytes: FRAGMENT_BYTES above FRAGMENT_ABOVE, else the whole message. */
export function frameBytesFor(total: number): number {
  return total > FRAGMENT_ABOVE ? FRAGMENT_BYTES : Math.max(total, 1);
}

/**
 * Sends `parts`, concatenated, as one message: a frame per part, or above FRAGMENT_ABOVE bytes in
 * frames of at most FRAGMENT_BYTES; `cb` once the socket has written the last.
 */
export function sendFragmented(ws: WebSocket, parts: readonly Uint8Array[], cb?: (err?: Error) => void): void {
  const size = frameBytesFor(parts.reduce((n, p) => n + p.byteLength, 0));
  const pieces = parts.flatMap((part) => {
    const out: Uint8Array[] = [];
    for (let at = 0; at < part.byteLength; at += size) out.push(part.subarray(at, at + size));
    return out;
  });
  if (pieces.length === 0) pieces.push(new Uint8Array(0));
  pieces.forEach((piece, i) => {
    const last = i === pieces.length - 1;
    ws.send(piece, { binary: true, fin: last }, last ? cb : undefined);
  });
}
