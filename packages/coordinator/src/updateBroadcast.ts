import { type TensorSpec, type WireDtype, layoutBody, writeBody } from '@ganfleet/shared/wire';
import type { ModelPreset } from '@ganfleet/shared/model';

/** Parameters with a version per change, so that each member is sent only what it lacks (ParamStore; a relay's ParamMirror). */
export interface ParamSource {
  readonly version: number;
  readonly params: ReadonlyMap<string, Float32Array>;
  changedSince(version: number): string[];
}

/** A round's update body, shared by every worker that needs exactly these parameters in this encoding. */
export interface SharedBody {
  manifest: TensorSpec[];
  bytes: Uint8Array;
  /** Sockets that still hold the bytes; the buffer is reused only at 0. */
  inFlight: number;
}

/**
 * Encodes each round's parameter update once per (store version a worker last synced at, wire
 * dtype), instead of once per worker: in a steady run every worker is at the same version, so the
 * parameters are copied once per round however many workers there are, and every socket sends
 * the same bytes. Buffers are reused once every socket has finished sending them.
 */
export class UpdateBroadcast {
  private readonly buffers: SharedBody[] = [];
  private readonly shapes: ReadonlyMap<string, number[]>;

  constructor(preset: ModelPreset) {
    this.shapes = new Map(preset.params.map((s) => [s.name, s.shape]));
  }

  /**
   * The bodies of one round: `bodyFor` for each worker (the same body for the same version and
   * dtype), then `sending()` once every send is queued, which hands the buffers over to the sockets.
   */
  round(store: ParamSource): { bodyFor(syncedVersion: number, dtype: WireDtype): SharedBody | undefined; sending(): void } {
    const made = new Map<string, SharedBody | undefined>();
    return {
      bodyFor: (syncedVersion, dtype) => {
        const key = `${syncedVersion}/${dtype}`;
        if (!made.has(key)) made.set(key, this.encode(store, syncedVersion, dtype));
        return made.get(key);
      },
      // The round held each body while it was being sent to all; now only the sockets do.
      sending: () => {
        for (const body of made.values()) if (body) body.inFlight -= 1;
      },
    };
  }

  /** Marks one socket's send of `body` done. */
  sent(body: SharedBody): void {
    body.inFlight -= 1;
  }

  private encode(store: ParamSource, syncedVersion: number, dtype: WireDtype): SharedBody | undefined {
    const names = store.changedSince(syncedVersion);
    if (names.length === 0) return undefined;
    const tensors = names.map((name) => ({ name, shape: this.shapes.get(name) as number[], values: store.params.get(name) as Float32Array }));
    const layout = layoutBody({ update: tensors }, dtype);
    const body = this.take(layout.byteLength);
    writeBody(layout, { update: tensors }, body.bytes);
    body.manifest = layout.manifests.update as TensorSpec[];
    return body;
  }

  /** A free buffer of exactly `byteLength` bytes (an idle one of that size, else a new one). */
  private take(byteLength: number): SharedBody {
    const idle = this.buffers.find((b) => b.inFlight === 0 && b.bytes.byteLength === byteLength);
    const body = idle ?? { manifest: [], bytes: new Uint8Array(byteLength), inFlight: 0 };
    // Held by the round until sending() (see round()).
    body.inFlight += 1;
    if (idle) return idle;
    this.buffers.push(body);
    // Sizes change with membership: drop an idle buffer when too many are kept.
    const stale = this.buffers.findIndex((b) => b.inFlight === 0);
    if (this.buffers.length > 8 && stale >= 0) this.buffers.splice(stale, 1);
    return body;
  }
}
