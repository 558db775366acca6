import type { GanErrorCode, SharedAnswer, WireDtype } from '@ganfleet/shared/wire';
import type { BackendInfo } from '@ganfleet/shared/backends';

/**
 * Messages between the connection thread and the compute thread (structured clone, buffers
 * transferred, never copied). A round is one message each way: the round's frame as it came off
 * the socket (with a spare buffer for the reply), and the gradients frame ready to send (with the
 * round's buffer handed back, to receive the next round into). With shared memory in use
 * (link/sharedRegion.ts, mapped by this thread) a frame that is in the region is not in the
 * message: `frame` is absent, `frameLength`/`byteLength` say how much of the region it fills.
 */
export type ThreadRequest =
  | { kind: 'init'; id: number; backend: string; dataDir?: string; threads?: number; sharedMemory: boolean }
  | { kind: 'start'; id: number; preset: string; welcome: ArrayBuffer }
  | { kind: 'round'; id: number; frame?: ArrayBuffer; frameLength: number; spare?: ArrayBuffer };

export type ThreadReply =
  | {
      kind: 'ready';
      id: number;
      backend: BackendInfo;
      dataset: { name: string; count: number; fingerprint: string };
      /** Whether this thread can map shared memory (asked for, and the addon loads), or why not. */
      sharedMemory: { available: boolean; why?: string };
    }
  /** `shared`: the answer to the welcome's offer of shared memory, when it made one. */
  | { kind: 'started'; id: number; wireDtype: WireDtype; shared?: Omit<SharedAnswer, 'type'> }
  | {
      kind: 'gradients';
      id: number;
      frame?: ArrayBuffer;
      byteLength: number;
      /** The round's frame handed back, for the connection thread to receive the next one into. */
      received?: ArrayBuffer;
      round: number;
      loss: number;
      computeMs: number;
    }
  | { kind: 'error'; id: number; code: GanErrorCode; message: string };
