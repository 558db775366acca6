export * from './codec.js';
export * from './errors.js';
export { FRAME_MAGIC, type BodyLayout, encodeFrame, frameHead, isTensorFrame, layoutBody, writeBody } from './frame.js';
export { PROTOCOL_VERSION } from './version.js';
export type { Hello, RunDescriptor, Welcome, Refuse } from './handshake.js';
export { PHASES, encodeIndices, decodeIndices, type Phase, type Round, type Gradients } from './round.js';
export type { FetchGenerator, GeneratorMessage } from './fetch.js';
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
