import { concat } from '../wire/index.js';

/**
 * Joins a message that ws hands over as fragments (`binaryType = 'fragments'`; peers send large
 * messages in frames, see sendFragmented) into one buffer that is reused from
 * message to message. Left to itself ws would join every large message into a fresh buffer, and
 * touching fresh memory costs page faults that can exceed the copy many times over
 * (docs/benchmarks.md, "Receiving into reused buffers").
 *
 * The buffer is lent with the message until `release()`: a message that arrives meanwhile (a peer
 * sending out of turn) is joined into a buffer of its own, so it never overwrites one in use.
 */
export class FrameJoiner {
  /** The reusable buffer while no message holds it. */
  private idle: ArrayBuffer | undefined;
  /** The buffer of the message being handled, until release(). */
  private lent: ArrayBuffer | undefined;

  /** `data` as ws delivered it -> the message's bytes (fragments joined; anything else as it is, for the parser to judge). */
  join(data: unknown): unknown {
    if (!Array.isArray(data)) return data;
    if (data.length === 1) return data[0];
    if (data.length === 0 || !data.every((c) => c instanceof Uint8Array)) return data;
    return this.into(data as Uint8Array[]);
  }

  /**
   * `byteLength` bytes of the reused buffer, lent like a joined message, their content left as it
   * was: room for a frame read from memory its sender can still write, copied out piece by piece.
   */
  reserve(byteLength: number): Uint8Array<ArrayBuffer> {
    let buffer: ArrayBuffer;
    if (this.lent) buffer = new ArrayBuffer(byteLength);
    else {
      buffer = this.idle && this.idle.byteLength >= byteLength ? this.idle : new ArrayBuffer(byteLength);
      this.idle = undefined;
      this.lent = buffer;
    }
    return new Uint8Array(buffer, 0, byteLength);
  }

  private into(chunks: readonly Uint8Array[]): Uint8Array {
    return concat(chunks, this.reserve(chunks.reduce((n, c) => n + c.byteLength, 0)));
  }

  /** Whether `bytes` is a message this joiner joined and still lends (its buffer may be handed to another thread, then adopted back). */
  owns(bytes: Uint8Array): boolean {
    return this.lent !== undefined && bytes.buffer === this.lent;
  }

  /** The last joined message is done with: its buffer serves the next one (unless it was moved to another thread). */
  release(): void {
    if (this.lent) this.keep(this.lent);
    this.lent = undefined;
  }

  /** A buffer this joiner lent, moved to another thread and moved back: it serves the next message. */
  adopt(buffer: ArrayBuffer): void {
    this.keep(buffer);
  }

  /** The larger of the idle buffer and `buffer` stays (a moved-away buffer has no bytes left). */
  private keep(buffer: ArrayBuffer): void {
    if (buffer.byteLength > (this.idle?.byteLength ?? 0)) this.idle = buffer;
  }
}
