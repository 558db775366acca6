/**
 * Whether two float arrays hold the same bytes. vitest's deep equality walks a typed array element
 * by element, which takes seconds for parameter-sized arrays; this is one memcmp.
 */
export function sameBytes(a: Float32Array | undefined, b: Float32Array | undefined): boolean {
  if (!a || !b) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
