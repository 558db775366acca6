import type WebSocket from 'ws';

/**
 * The largest frame a peer sends. The receiving ws copies each frame that spans several socket
 * reads into a buffer of the frame's size: buffers this size are served again and again from the
 * heap, where message-sized ones (tens of MB) were fresh memory, and so page faults, every round;
 * much smaller frames cost more per frame than they save (docs/benchmarks.md).
 */
export const FRAGMENT_BYTES = 1024 * 1024;

/** Sends `parts`, concatenated, as one message in frames of at most FRAGMENT_BYTES; `cb` once the socket has written the last. */
export function sendFragmented(ws: WebSocket, parts: readonly Uint8Array[], cb?: (err?: Error) => void): void {
  const pieces = parts.flatMap((part) => {
    const out: Uint8Array[] = [];
    for (let at = 0; at < part.byteLength; at += FRAGMENT_BYTES) out.push(part.subarray(at, at + FRAGMENT_BYTES));
    return out;
  });
  if (pieces.length === 0) pieces.push(new Uint8Array(0));
  pieces.forEach((piece, i) => {
    const last = i === pieces.length - 1;
    ws.send(piece, { binary: true, fin: last }, last ? cb : undefined);
  });
}
