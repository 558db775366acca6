/*
 * The two message unions and the only way bytes become messages. "Direction" means
 * which end of the socket, not which program: a sampling client connects to the
 * coordinator like a worker does, so `fetchGenerator` is in WorkerToCoordinator and
 * `generator` in CoordinatorToWorker; the coordinator's per-connection state decides
 * which messages are acceptable when (hello or fetchGenerator first, never both).
 */
import { Unpackr } from 'msgpackr';
import type { EncodedTensors } from './codec.js';
import { concat } from './concat.js';
import { GanError } from './errors.js';
import { readBye, readError, type Bye, type ErrorMessage } from './control.js';
import { readFetchGenerator, readGenerator, type FetchGenerator, type GeneratorMessage } from './fetch.js';
import { badMessage, readMap, type Fields } from './fields.js';
import { encodeFrameOf, isTensorFrame, packr, splitFrame } from './frame.js';
import { readHello, readRefuse, readWelcome, type Hello, type Refuse, type Welcome } from './handshake.js';
import { readSharedAnswer, type SharedAnswer } from './sharedMemory.js';
import { readGradients, readLeaves, readRound, readSums, type Gradients, type Leaves, type Round, type Sums } from './round.js';

export type CoordinatorToWorker = Welcome | Refuse | Round | GeneratorMessage | Bye | ErrorMessage;

export type WorkerToCoordinator = Hello | Gradients | Sums | Leaves | SharedAnswer | FetchGenerator | Bye | ErrorMessage;

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
  sums: readSums,
  leaves: readLeaves,
  sharedAnswer: readSharedAnswer,
  fetchGenerator: readFetchGenerator,
  bye: readBye,
  error: readError,
};

// copyBuffers off: bin fields are views into the frame, never copies.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, copyBuffers: false });

/** The messages that carry tensors, and which of their fields are tensor sets: they travel as tensor frames (frame.ts). */
export const TENSOR_SETS = { welcome: ['params'], round: ['update'], gradients: ['grads', 'stats'], sums: ['sums', 'stats'] } as const;

type TensorMessage = Extract<Message, { type: keyof typeof TENSOR_SETS }>;

const isTensorMessage = (msg: Message): msg is TensorMessage => Object.hasOwn(TENSOR_SETS, msg.type);

/**
 * Serialises a message for `ws.send`: a tensor frame for the messages that carry tensors (their
 * sets copied into one body), a bare msgpack map for the others. The bytes of a bare map live in
 * a buffer msgpackr shares with other results: send them before encoding again.
 */
export function encodeMessage(msg: Message): Uint8Array {
  if (isTensorMessage(msg)) {
    const sets = TENSOR_SETS[msg.type] as readonly string[];
    const entries = Object.entries(msg) as [string, unknown][];
    const fields = Object.fromEntries(entries.filter(([k]) => !sets.includes(k)));
    const present = Object.fromEntries(entries.filter(([k, v]) => sets.includes(k) && v !== undefined)) as Record<string, EncodedTensors>;
    return encodeFrameOf(fields, present);
  }
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
  const bytes = frameBytes(frame, isBinary);
  const tensorFrame = isTensorFrame(bytes);
  const parts = tensorFrame ? splitFrame(bytes) : undefined;
  const decoded = unpackFrame(parts?.header ?? bytes);
  if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded) || decoded instanceof Uint8Array) {
    throw badMessage('message', 'expected a map');
  }
  const type = (decoded as Record<string, unknown>).type;
  if (typeof type !== 'string') throw badMessage('message.type', 'expected a string');
  // hasOwn, not `in`: "constructor" or "toString" must not find Object.prototype members.
  if (!Object.hasOwn(readers, type)) {
    throw new GanError('UNKNOWN_TYPE', `unknown ${direction} message type ${JSON.stringify(type.slice(0, 64))}`);
  }
  if (tensorFrame !== Object.hasOwn(TENSOR_SETS, type)) {
    throw new GanError('BAD_FRAME', `${type} must come as ${tensorFrame ? 'a bare msgpack map' : 'a tensor frame'}`);
  }
  const read = readers[type as M['type']];
  return readMap(
    decoded,
    type,
    (f) => {
      f.required('type');
      return read(f);
    },
    parts?.body,
  );
}

/**
 * The frame as one Uint8Array whose tensors can be viewed in place: ws's Buffer (whose memory may
 * start at any byte) is copied once into an aligned buffer only when it is not 4-aligned.
 */
function frameBytes(frame: unknown, isBinary: boolean): Uint8Array {
  if (!isBinary) throw new GanError('BAD_FRAME', 'text frame received; the protocol uses binary frames');
  let bytes: Uint8Array;
  if (frame instanceof Uint8Array) bytes = frame;
  else if (frame instanceof ArrayBuffer) bytes = new Uint8Array(frame);
  // ws hands over a fragmented message as its chunks when nothing joined them before.
  else if (Array.isArray(frame) && frame.every((c) => c instanceof Uint8Array)) bytes = concat(frame as Uint8Array[]);
  else throw new GanError('BAD_FRAME', `expected a binary frame, got ${typeof frame}`);
  return bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
}

function unpackFrame(bytes: Uint8Array): unknown {
  try {
    return unpackr.unpack(bytes) as unknown;
  } catch (e) {
    const detail = e instanceof Error ? e.message.slice(0, 200) : String(e);
    throw new GanError('BAD_FRAME', `frame is not a single msgpack value: ${detail}`, { cause: e });
  }
}
