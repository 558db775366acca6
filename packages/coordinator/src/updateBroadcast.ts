import { setImmediate as nextTurn } from 'node:timers/promises';
import { type TensorSpec, type WireDtype, layoutBody, writeBody } from '@ganfleet/shared/wire';
import { frameBytesFor } from '@ganfleet/shared/link';
import type { ModelPreset } from '@ganfleet/shared/model';

/** Parameters with a version per change, so that each member is sent only what it lacks (ParamStore; a relay's ParamMirror). */
export interface ParamSource {
  readonly version: number;
  readonly params: ReadonlyMap<string, Float32Array>;
  changedSince(version: number): string[];
  /** Values [from, to) of parameter `name`, final, written into `into` (ParamStore carries out a pending Adam step that far, writing them there as it goes). */
  copySettled(name: string, from: number, to: number, into: Float32Array): void;
}

/** A round's update body, shared by every worker that needs exactly these parameters in this encoding. */
export interface SharedBody {
  manifest: TensorSpec[];
  bytes: Uint8Array;
  /** Sockets that still hold the bytes; the buffer is reused only at 0. */
  inFlight: number;
}

/** Where a body goes as it is written: its bytes piece by piece, in order, `last` on the final piece. */
export type BodySink = (piece: Uint8Array, last: boolean) => void;

/**
 * A body's consumer: its sink, and for a worker's shared region the region's memory, which the
 * body is written straight into when it is the only destination. A region's sink takes each piece
 * as soon as it is written (nothing is sent per piece, and the worker takes the first parameters
 * while Adam computes the rest); a socket's takes whole frames.
 */
interface Destination {
  sink: BodySink;
  into?: Uint8Array;
}

/**
 * Encodes each round's parameter update once per (store version a worker last synced at, wire
 * dtype), instead of once per worker: in a steady run every worker is at the same version, so the
 * parameters are copied once per round however many workers there are, and every socket sends
 * the same bytes. A body goes in the frames sendFragmented would use (frameBytesFor: 1 MiB pieces
 * above 4 MiB, else whole), and a float32 one is written frame by frame by the round's Adam step
 * itself (ParamStore.copySettled), so that the workers receive the first frames while Adam
 * computes the rest. Buffers are reused once every socket has finished
 * sending them.
 */
export class UpdateBroadcast {
  private readonly buffers: SharedBody[] = [];
  private readonly shapes: ReadonlyMap<string, number[]>;

  constructor(preset: ModelPreset) {
    this.shapes = new Map(preset.params.map((s) => [s.name, s.shape]));
  }

  /**
   * The bodies of one round: `bodyFor` for each worker (the same body for the same version and
   * dtype; its manifest is final, its bytes are not yet), `to` for each socket that sends it, then
   * `stream()`, which writes the bodies and hands each piece to their sockets, and then the
   * buffers over to the sockets.
   */
  round(store: ParamSource): {
    bodyFor(syncedVersion: number, dtype: WireDtype): SharedBody | undefined;
    to(body: SharedBody, sink: BodySink, into?: Uint8Array): void;
    stream(): Promise<void>;
  } {
    const made = new Map<string, SharedBody | undefined>();
    const sinks = new Map<SharedBody, Destination[]>();
    return {
      bodyFor: (syncedVersion, dtype) => {
        const key = `${syncedVersion}/${dtype}`;
        if (!made.has(key)) made.set(key, this.layout(store, syncedVersion, dtype));
        return made.get(key);
      },
      to: (body, sink, into) => sinks.set(body, [...(sinks.get(body) ?? []), { sink, ...(into ? { into } : {}) }]),
      stream: async () => {
        for (const body of made.values()) {
          if (!body) continue;
          await this.write(store, body, sinks.get(body) ?? []);
          // The round held the body while it was being written; now only the sockets do.
          body.inFlight -= 1;
        }
      },
    };
  }

  /** Marks one socket's send of `body` done. */
  sent(body: SharedBody): void {
    body.inFlight -= 1;
  }

  /** The body's buffer and manifest; a float16 body is written here, since its scales go in the header, ahead of the bytes. */
  private layout(store: ParamSource, syncedVersion: number, dtype: WireDtype): SharedBody | undefined {
    const names = store.changedSince(syncedVersion);
    if (names.length === 0) return undefined;
    const specs = names.map((name) => ({ name, shape: this.shapes.get(name) as number[] }));
    const layout = layoutBody({ update: specs }, dtype);
    const body = this.take(layout.byteLength);
    body.manifest = layout.manifests.update as TensorSpec[];
    if (dtype === 'float16') writeBody(layout, { update: specs.map((s) => ({ ...s, values: store.params.get(s.name) as Float32Array })) }, body.bytes);
    return body;
  }

  /**
   * Hands the body to `sinks` in frames of frameBytesFor its size, letting the sockets send between
   * them. A float32 body is written here, each frame's values by the store as it settles them (by
   * Adam itself where its step is still pending), straight into its only destination's memory when
   * it has some (one copy fewer); a float16 one was written whole by layout().
   */
  private async write(store: ParamSource, body: SharedBody, destinations: readonly Destination[]): Promise<void> {
    const { manifest } = body;
    const prewritten = manifest[0]?.dtype === 'float16';
    const only = destinations.length === 1 ? destinations[0] : undefined;
    const bytes = !prewritten && only?.into && only.into.byteLength === body.bytes.byteLength ? only.into : body.bytes;
    const sinks = destinations.filter((d) => !d.into).map((d) => d.sink);
    const regions = destinations.filter((d) => d.into).map((d) => d.sink);
    const pieceBytes = frameBytesFor(bytes.byteLength);
    let written = prewritten ? bytes.byteLength : 0;
    let sent = 0;
    let shared = 0;
    // Every whole frame written so far but the body's last, which goes with `last` set; to a region, all of it.
    const sendWritten = async (): Promise<void> => {
      if (written > shared && written < bytes.byteLength) {
        for (const sink of regions) sink(bytes.subarray(shared, written), false);
        shared = written;
      }
      for (; sent + pieceBytes <= written && sent + pieceBytes < bytes.byteLength; sent += pieceBytes) {
        for (const sink of sinks) sink(bytes.subarray(sent, sent + pieceBytes), false);
        // The sockets send between frames; regions need no turn.
        if (sinks.length > 0) await nextTurn();
      }
    };
    await sendWritten();
    if (!prewritten) {
      for (const spec of manifest) {
        const count = spec.shape.reduce((a, b) => a * b, 1);
        bytes.fill(0, written, spec.offset);
        for (let from = 0; from < count;) {
          // Up to the end of the frame being written.
          const to = Math.min(count, Math.max(from + 1, Math.floor((sent + pieceBytes - spec.offset) / 4)));
          store.copySettled(spec.name, from, to, new Float32Array(bytes.buffer, bytes.byteOffset + spec.offset + 4 * from, to - from));
          written = spec.offset + 4 * to;
          from = to;
          await sendWritten();
        }
      }
    }
    for (const sink of sinks) sink(bytes.subarray(sent), true);
    for (const sink of regions) sink(bytes.subarray(shared), true);
  }

  /** A free buffer of exactly `byteLength` bytes (an idle one of that size, else a new one). */
  private take(byteLength: number): SharedBody {
    const idle = this.buffers.find((b) => b.inFlight === 0 && b.bytes.byteLength === byteLength);
    const body = idle ?? { manifest: [], bytes: new Uint8Array(byteLength), inFlight: 0 };
    // Held by the round until its bodies are written (see round()).
    body.inFlight += 1;
    if (idle) return idle;
    this.buffers.push(body);
    // Sizes change with membership: drop an idle buffer when too many are kept.
    const stale = this.buffers.findIndex((b) => b.inFlight === 0);
    if (this.buffers.length > 8 && stale >= 0) this.buffers.splice(stale, 1);
    return body;
  }
}
