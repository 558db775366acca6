export * from './codec.js';
export * from './errors.js';
export { concat } from './concat.js';
export {
  FRAME_MAGIC,
  type BodyLayout,
  bodyFirstFrame,
  type BodyFirstFrame,
  encodeFrame,
  frameHead,
  isTensorFrame,
  layoutBody,
  type SetDtypes,
  writeBody,
} from './frame.js';
export { PROTOCOL_VERSION } from './version.js';
export { PEER_ROLES, type PeerRole, type Hello, type RunDescriptor, type Welcome, type Refuse, RELAY_SUMS, type RelaySums } from './handshake.js';
export {
  MAX_SLOTS,
  PHASES,
  encodeIndices,
  decodeIndices,
  type Phase,
  type Round,
  type Gradients,
  type Sums,
  type Leaves,
  type RestEntry,
  type TreeNode,
} from './round.js';
export type { FetchGenerator, GeneratorMessage } from './fetch.js';
export { MAX_SHARED_BYTES, NONCE_BYTES, type SharedAnswer, type SharedOffer } from './sharedMemory.js';
export type { Bye, ErrorMessage } from './control.js';
export {
  TENSOR_SETS,
  encodeMessage,
  parseWorkerMessage,
  parseCoordinatorMessage,
  type CoordinatorToWorker,
  type WorkerToCoordinator,
  type Message,
} from './messages.js';
