/*
 * The one error type that crosses package and wire boundaries. Codes are strings so
 * they can travel in `error`/`refuse` messages and logs without a lookup table.
 */

export type GanErrorCode =
  /** A WebSocket frame was not binary or not decodable msgpack. */
  | 'BAD_FRAME'
  /** A decoded message had missing, extra-large or wrongly typed fields. */
  | 'BAD_MESSAGE'
  /** A message carried a `type` tag this side does not understand. */
  | 'UNKNOWN_TYPE'
  /** The peer speaks a different PROTOCOL_VERSION. */
  | 'VERSION_MISMATCH'
  /** An encoded tensor set had a bad manifest, byte count, names or shapes. */
  | 'BAD_TENSOR'
  /** A tensor contained NaN or ±Infinity. */
  | 'NON_FINITE'
  /** A finite value outside its sane range (a gradient too large to average safely, a negative variance, a huge loss). */
  | 'OUT_OF_RANGE'
  /** A contribution far from the others' and the run's recent ones (gradient norm beyond the screening threshold). */
  | 'OUTLIER'
  /** A worker missed its round's deadline: it sits out until it catches up, or is dropped. */
  | 'STRAGGLER'
  /** A reply referred to a step/phase the coordinator has moved past. */
  | 'STALE_REPLY'
  /** The peer presented a missing or wrong token. */
  | 'UNAUTHORIZED'
  /** A frame or field exceeded a size limit. */
  | 'TOO_LARGE'
  /** The coordinator already holds --max-connections connections (refused at the upgrade with 503). */
  | 'TOO_MANY_CONNECTIONS'
  /** Training data was malformed (bad header, wrong sizes, bad pixel values). */
  | 'DATA_INVALID'
  /** Training data could not be found at the configured location. */
  | 'DATA_NOT_FOUND'
  /** A worker's dataset differs from the coordinator's (name, count or fingerprint). */
  | 'DATASET_MISMATCH'
  /** A checkpoint file failed to parse or verify. */
  | 'CHECKPOINT_CORRUPT'
  /** The requested TensorFlow.js backend could not be initialised. */
  | 'BACKEND_UNAVAILABLE'
  /** Configuration or command-line options were invalid. */
  | 'CONFIG_INVALID'
  /** An operation did not complete within its deadline. */
  | 'TIMEOUT'
  /** A worker disconnected or stopped responding mid-round. */
  | 'WORKER_LOST'
  /** A bug: an invariant was violated. */
  | 'INTERNAL';

/** Every code, in declaration order; `satisfies` keeps it in step with the union. */
export const ERROR_CODES = [
  'BAD_FRAME',
  'BAD_MESSAGE',
  'UNKNOWN_TYPE',
  'VERSION_MISMATCH',
  'BAD_TENSOR',
  'NON_FINITE',
  'OUT_OF_RANGE',
  'OUTLIER',
  'STRAGGLER',
  'STALE_REPLY',
  'UNAUTHORIZED',
  'TOO_LARGE',
  'TOO_MANY_CONNECTIONS',
  'DATA_INVALID',
  'DATA_NOT_FOUND',
  'DATASET_MISMATCH',
  'CHECKPOINT_CORRUPT',
  'BACKEND_UNAVAILABLE',
  'CONFIG_INVALID',
  'TIMEOUT',
  'WORKER_LOST',
  'INTERNAL',
] as const satisfies readonly GanErrorCode[];

// Fails to compile if a code is added to the union but not to ERROR_CODES.
type MissingFromList = Exclude<GanErrorCode, (typeof ERROR_CODES)[number]>;
const listIsComplete: MissingFromList extends never ? true : never = true;
void listIsComplete;

export class GanError extends Error {
  readonly code: GanErrorCode;

  constructor(code: GanErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GanError';
    this.code = code;
  }
}

export function isGanError(e: unknown): e is GanError {
  return e instanceof GanError;
}

/** Returns true when `s` is one of the known codes (for validating codes read off the wire). */
export function isGanErrorCode(s: unknown): s is GanErrorCode {
  return typeof s === 'string' && (ERROR_CODES as readonly string[]).includes(s);
}

/** WebSocket close code (RFC 6455 §7.4.1) to use when closing a connection because of `code`. */
export function closeCodeFor(code: GanErrorCode): number {
  switch (code) {
    case 'UNAUTHORIZED':
    case 'VERSION_MISMATCH':
    case 'DATASET_MISMATCH':
    case 'STALE_REPLY':
    case 'NON_FINITE':
    case 'OUT_OF_RANGE':
    case 'OUTLIER':
    case 'STRAGGLER':
      return 1008; // policy violation
    case 'BAD_FRAME':
    case 'BAD_MESSAGE':
    case 'UNKNOWN_TYPE':
    case 'BAD_TENSOR':
      return 1002; // protocol error
    case 'TOO_LARGE':
      return 1009; // message too big
    case 'TOO_MANY_CONNECTIONS':
      return 1013; // try again later
    default:
      return 1011; // internal error
  }
}
