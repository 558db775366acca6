/** The chunks' bytes one after another in `into` (by default a fresh array of their total length), which is returned. */
export function concat(chunks: readonly Uint8Array[], into = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0))): Uint8Array {
  let offset = 0;
  for (const c of chunks) {
    into.set(c, offset);
    offset += c.byteLength;
  }
  return into;
}
