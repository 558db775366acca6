/*
 * The two message unions and the only way bytes become messages. "Direction" means
 * which end of the socket, not which program: a sampling client connects to the
 * coordinator like a worker does, so `fetchGenerator` is in WorkerToCoordinator and
 * `generator` in CoordinatorToWorker; the coordinator's per-connection state decides
 * which messages are acceptable when (hello or fetchGenerator first, never both).
 */
import { Packr, Unpackr, type Options } from 'msgpackr';
import { GanError } from './errors.js';
import { readBye, readError, type Bye, type ErrorMessage } from './control.js';
import { readFetchGenerator, readGenerator, type FetchGenerator, type GeneratorMessage } from './fetch.js';
import { badMessage, readMap, type Fields } from './fields.js';
import { readHello, readRefuse, readWelcome, type Hello, type Refuse, type Welcome } from './handshake.js';
import { readGradients, readRound, type Gradients, type Round } from './round.js';

export type CoordinatorToWorker = Welcome | Refuse | Round | GeneratorMessage | Bye | ErrorMessage;

export type WorkerToCoordinator = Hello | Gradients | FetchGenerator | Bye | ErrorMessage;

export type Message = CoordinatorToWorker | WorkerToCoordinator;

type Readers<M extends { type: string }> = { [K in M['type']]: (f: Fields) => Extract<M, { type: K }> };

const COORDINATOR_TO_WORKER: Readers<CoordinatorToWorker> = {
  welcome: readWelcome,
  refuse: readRefuse,
  round: readRound,
  generator: readGenerator,
  bye: readBye,
  error: readError,
};

const WORKER_TO_COORDINATOR: Readers<WorkerToCoordinator> = {
  hello: readHello,
  gradients: readGradients,
  fetchGenerator: readFetchGenerator,
  bye: readBye,
  error: readError,
};

// Plain maps only: records/structures and msgpackr's extension types are not portable, and with
// moreTypes off every typed array (Uint8Array included) is written as msgpack bin. Skipping
// undefined makes an absent optional field and `field: undefined` encode to identical bytes.
// skipValues is missing from msgpackr's Options typings, hence the widened variable.
const packOptions: Options = { useRecords: false, moreTypes: false, useFloat32: 0, ...{ skipValues: [undefined] } };
const packr = new Packr(packOptions);
// copyBuffers off: bin fields are views into the frame, so tensor data is never copied here.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, copyBuffers: false });

/** Serialises a message for `ws.send`. The bytes live in a buffer msgpackr shares with other results. */
export function encodeMessage(msg: Message): Uint8Array {
  const out = packr.pack(msg);
  // Re-viewed as a plain Uint8Array so `.slice()` copies: Buffer#slice would alias that shared buffer.
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Parses one frame received by the coordinator. `frame` is what ws emits (Buffer,
 * ArrayBuffer or Buffer[]); pass ws's `isBinary` flag since ws v8 delivers text frames as Buffers too.
 */
export function parseWorkerMessage(frame: unknown, isBinary = true): WorkerToCoordinator {
  return parse(frame, isBinary, WORKER_TO_COORDINATOR, 'worker-to-coordinator');
}

/** Parses one frame received by a worker or sampling client; see parseWorkerMessage. */
export function parseCoordinatorMessage(frame: unknown, isBinary = true): CoordinatorToWorker {
  return parse(frame, isBinary, COORDINATOR_TO_WORKER, 'coordinator-to-worker');
}

function parse<M extends { type: string }>(frame: unknown, isBinary: boolean, readers: Readers<M>, direction: string): M {
  const decoded = unpackFrame(frameBytes(frame, isBinary));
  if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded) || decoded instanceof Uint8Array) {
    throw badMessage('message', 'expected a map');
  }
  const type = (decoded as Record<string, unknown>).type;
  if (typeof type !== 'string') throw badMessage('message.type', 'expected a string');
  // hasOwn, not `in`: "constructor" or "toString" must not find Object.prototype members.
  if (!Object.hasOwn(readers, type)) {
    throw new GanError('UNKNOWN_TYPE', `unknown ${direction} message type ${JSON.stringify(type.slice(0, 64))}`);
  }
  const read = readers[type as M['type']];
  return readMap(decoded, type, (f) => {
    f.required('type');
    return read(f);
  });
}

function frameBytes(frame: unknown, isBinary: boolean): Uint8Array {
  if (!isBinary) throw new GanError('BAD_FRAME', 'text frame received; the protocol uses binary msgpack frames');
  if (frame instanceof Uint8Array) return frame;
  if (frame instanceof ArrayBuffer) return new Uint8Array(frame);
  if (Array.isArray(frame) && frame.every((c) => c instanceof Uint8Array)) return concat(frame as Uint8Array[]);
  throw new GanError('BAD_FRAME', `expected a binary frame, got ${typeof frame}`);
}

/** ws hands over a fragmented message as its chunks. */
function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}

function unpackFrame(bytes: Uint8Array): unknown {
  try {
    return unpackr.unpack(bytes) as unknown;
  } catch (e) {
    const detail = e instanceof Error ? e.message.slice(0, 200) : String(e);
    throw new GanError('BAD_FRAME', `frame is not a single msgpack value: ${detail}`, { cause: e });
  }
}
