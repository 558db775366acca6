/*
 * Tensor frames (protocol 3): "GFT3", the header's length (u32 LE), a msgpack header, zero
 * padding to TENSOR_ALIGNMENT, then the body: every tensor the message carries, each at an aligned
 * offset given in the header's manifests. A receiver reads the tensors in place. A sender can
 * write the body once and send it to many peers behind a header of each's own (frameHead), and can
 * reuse one buffer for its frames (encodeFrameInto). Frames without the magic are bare msgpack
 * maps: the control messages (hello, refuse, error, bye, fetchGenerator), whose shape never changes
 * so that a peer on another version is always told so.
 */
import { Packr, type Options } from 'msgpackr';
import {
  BYTES_PER_VALUE,
  type EncodedTensors,
  type NamedSums,
  type NamedTensor,
  TENSOR_ALIGNMENT,
  type TensorDtype,
  type TensorSpec,
  alignUp,
  layoutTensors,
  writeTensors,
} from './codec.js';
import { GanError } from './errors.js';
import { log2ScaleFor } from './float16.js';

export const FRAME_MAGIC = Uint8Array.from([0x47, 0x46, 0x54, 0x33]); // "GFT3"
const PREFIX_BYTES = 8;

// Plain maps only: records/structures and msgpackr's extension types are not portable, and with
// moreTypes off every typed array (Uint8Array included) is written as msgpack bin. Skipping
// undefined makes an absent optional field and `field: undefined` encode to identical bytes.
// skipValues is missing from msgpackr's Options typings, hence the widened variable.
const packOptions: Options = { useRecords: false, moreTypes: false, useFloat32: 0, ...{ skipValues: [undefined] } };
export const packr = new Packr(packOptions);

export function isTensorFrame(bytes: Uint8Array): boolean {
  return bytes.byteLength >= PREFIX_BYTES && FRAME_MAGIC.every((b, i) => bytes[i] === b);
}

/** Where the body of a frame whose header packs to `headerBytes` bytes starts. */
const bodyStart = (headerBytes: number): number => alignUp(PREFIX_BYTES + headerBytes);

/** The tensor sets of a message laid out in one body, with the manifests its header carries. */
export interface BodyLayout {
  manifests: Record<string, TensorSpec[]>;
  /** Where each set's bytes start and end (the gaps between sets are padding). */
  extents: Record<string, [number, number]>;
  byteLength: number;
}

/** A dtype for every set, or one per set (a relay's rounded sums beside its exact statistics). */
export type SetDtypes = TensorDtype | Readonly<Record<string, TensorDtype>>;

/** Lays out `sets` one after another in one body; float16 manifests get their scales when the body is written. */
export function layoutBody(sets: Record<string, readonly Pick<TensorSpec, 'name' | 'shape'>[]>, dtype: SetDtypes): BodyLayout {
  let end = 0;
  const manifests: Record<string, TensorSpec[]> = {};
  const extents: Record<string, [number, number]> = {};
  for (const [field, specs] of Object.entries(sets)) {
    const setDtype = typeof dtype === 'string' ? dtype : dtype[field];
    if (!setDtype) throw new Error(`layoutBody: no dtype for the set ${field}`);
    const laid = layoutTensors(specs, setDtype, end);
    manifests[field] = laid.manifest;
    extents[field] = [laid.manifest[0]?.offset ?? end, laid.end];
    end = laid.end;
  }
  return { manifests, extents, byteLength: end };
}

/** Writes the sets' values into `body` (zeroing the padding), in the layout's order. */
export function writeBody(layout: BodyLayout, sets: Record<string, readonly (NamedTensor | NamedSums)[]>, body: Uint8Array): void {
  let written = 0;
  for (const [field, manifest] of Object.entries(layout.manifests)) {
    const [start, end] = layout.extents[field] as [number, number];
    body.fill(0, written, start);
    writeTensors(manifest, sets[field] ?? [], body);
    written = end;
  }
}

/** The part of a frame before its body: prefix, header, padding. `header` includes the manifests. */
export function frameHead(header: Record<string, unknown>): Uint8Array {
  const packed = packr.pack(header);
  const head = new Uint8Array(bodyStart(packed.byteLength));
  writeHead(head, packed);
  return head;
}

function writeHead(target: Uint8Array, packed: Uint8Array): void {
  target.set(FRAME_MAGIC, 0);
  new DataView(target.buffer, target.byteOffset, PREFIX_BYTES).setUint32(4, packed.byteLength, true);
  target.set(packed, PREFIX_BYTES);
  target.fill(0, PREFIX_BYTES + packed.byteLength, bodyStart(packed.byteLength));
}

/**
 * A whole frame: `fields` plus the sets' manifests in the header, the sets' values in the body.
 * With `into`, the frame is written into that buffer when it is large enough (a sender's reusable
 * outgoing buffer) and the returned bytes view it; otherwise a fresh buffer is allocated.
 */
export function encodeFrame(
  fields: Record<string, unknown>,
  sets: Record<string, readonly NamedTensor[]> | Record<string, readonly NamedSums[]>,
  dtype: SetDtypes,
  into?: Uint8Array,
): Uint8Array {
  const layout = layoutBody(sets, dtype);
  if (dtype === 'float16') scaleManifests(layout, sets as Record<string, readonly NamedTensor[]>);
  const packed = packr.pack({ ...fields, ...layout.manifests });
  const start = bodyStart(packed.byteLength);
  const total = start + layout.byteLength;
  const frame = into && into.byteLength >= total ? into.subarray(0, total) : new Uint8Array(total);
  writeHead(frame, packed);
  writeBody(layout, sets, frame.subarray(start));
  return frame;
}

/** A float32 frame whose body is written before its header is final: see bodyFirstFrame. */
export interface BodyFirstFrame {
  /** Float32 views of each set's tensors in the frame, in the order given: write the values there. */
  views: Record<string, Float32Array[]>;
  /** Writes the header (`fields` and the manifests) before the body and returns the whole frame: encodeFrame's bytes. */
  finish(fields: Record<string, unknown>): Uint8Array;
}

/**
 * A frame for values that do not exist yet (a worker's gradients, read from the backend straight
 * into its outgoing buffer): the body is placed behind a header packed from `placeholder` (the
 * fields with stand-in values of the same kinds), then finish() packs the real header and, in the
 * rare case that it ends in another alignment block, moves the body within the buffer.
 */
export function bodyFirstFrame(
  sets: Record<string, readonly Pick<TensorSpec, 'name' | 'shape'>[]>,
  placeholder: Record<string, unknown>,
  into?: Uint8Array,
): BodyFirstFrame {
  const layout = layoutBody(sets, 'float32');
  const guess = bodyStart(packr.pack({ ...placeholder, ...layout.manifests }).byteLength);
  // Room for a header one alignment block longer than the guess, so that moving never needs another buffer.
  const capacity = guess + TENSOR_ALIGNMENT + layout.byteLength;
  const buffer = into && into.byteLength >= capacity ? into : new Uint8Array(capacity);
  const count = (spec: TensorSpec): number => spec.shape.reduce((a, b) => a * b, 1);
  const views = Object.fromEntries(
    Object.entries(layout.manifests).map(([field, manifest]) => [
      field,
      manifest.map((spec) => new Float32Array(buffer.buffer, buffer.byteOffset + guess + spec.offset, count(spec))),
    ]),
  );
  return {
    views,
    finish(fields) {
      const packed = packr.pack({ ...fields, ...layout.manifests });
      const start = bodyStart(packed.byteLength);
      if (start > guess + TENSOR_ALIGNMENT) throw new GanError('INTERNAL', `a ${packed.byteLength}-byte header outgrew its placeholder's`);
      if (start !== guess) buffer.copyWithin(start, guess, guess + layout.byteLength);
      writeHead(buffer, packed);
      // The padding between tensors, as encodeFrame leaves it: zero.
      let written = 0;
      for (const manifest of Object.values(layout.manifests)) {
        for (const spec of manifest) {
          buffer.fill(0, start + written, start + spec.offset);
          written = spec.offset + 4 * count(spec);
        }
      }
      return buffer.subarray(0, start + layout.byteLength);
    },
  };
}

/** float16 scales belong in the header, which precedes the body: computed before either is written. */
function scaleManifests(layout: BodyLayout, sets: Record<string, readonly NamedTensor[]>): void {
  for (const [field, manifest] of Object.entries(layout.manifests)) {
    manifest.forEach((spec, i) => {
      const values = sets[field]?.[i]?.values;
      if (values) spec.log2Scale = log2ScaleFor(values);
    });
  }
}

/**
 * A frame of already encoded sets (each with its own bytes, as encodeTensors gives them): their
 * tensors' bytes are copied into the body as they are (dtype and scale kept), at new offsets.
 */
export function encodeFrameOf(fields: Record<string, unknown>, sets: Record<string, EncodedTensors>): Uint8Array {
  let end = 0;
  const manifests: Record<string, TensorSpec[]> = {};
  const moves: [Uint8Array, number][] = [];
  for (const [field, set] of Object.entries(sets)) {
    manifests[field] = set.manifest.map((spec) => {
      const offset = alignUp(end);
      const bytes = spec.shape.reduce((a, b) => a * b, 1) * BYTES_PER_VALUE[spec.dtype];
      moves.push([set.data.subarray(spec.offset, spec.offset + bytes), offset]);
      end = offset + bytes;
      return { ...spec, offset };
    });
  }
  const head = frameHead({ ...fields, ...manifests });
  const frame = new Uint8Array(head.byteLength + end);
  frame.set(head);
  for (const [bytes, offset] of moves) frame.set(bytes, head.byteLength + offset);
  return frame;
}

/** The frame's msgpack header (unparsed) and its body, both views of `frame`. */
export function splitFrame(frame: Uint8Array): { header: Uint8Array; body: Uint8Array } {
  const length = new DataView(frame.buffer, frame.byteOffset, PREFIX_BYTES).getUint32(4, true);
  const start = bodyStart(length);
  if (PREFIX_BYTES + length > frame.byteLength || start > frame.byteLength) {
    throw new GanError('BAD_FRAME', `a ${length}-byte header does not fit a ${frame.byteLength}-byte frame`);
  }
  return { header: frame.subarray(PREFIX_BYTES, PREFIX_BYTES + length), body: frame.subarray(start) };
}

export { TENSOR_ALIGNMENT };
