import type { GanErrorCode, SharedAnswer, WireDtype } from '@ganfleet/shared/wire';
import type { BackendInfo } from '@ganfleet/shared/backends';

/**
 * Messages between the connection thread and the compute thread (structured clone, buffers
 * transferred, never copied). A round over the socket is one message each way: the round's frame
 * as it came off the socket (with a spare buffer for the reply), and the gradients frame ready to
 * send (with the round's buffer handed back, to receive the next round into). Rounds through shared
 * memory (link/sharedRegion.ts, mapped and served by the compute thread) pass no message before
 * they are answered: the compute thread reports each afterwards (ThreadReport).
 */
export type ThreadRequest =
  | { kind: 'init'; id: number; backend: string; dataDir?: string; threads?: number; sharedMemory: boolean }
  | { kind: 'start'; id: number; preset: string; welcome: ArrayBuffer }
  | { kind: 'round'; id: number; frame: ArrayBuffer; frameLength: number; spare?: ArrayBuffer };

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
      frame: ArrayBuffer;
      byteLength: number;
      /** The round's frame handed back, for the connection thread to receive the next one into. */
      received: ArrayBuffer;
      round: number;
      loss: number;
      computeMs: number;
    }
  | { kind: 'error'; id: number; code: GanErrorCode; message: string };

/**
 * What the compute thread reports unasked: a round it answered through shared memory (with
 * `frame` when the reply did not fit there and the socket must carry it), or a round there that
 * failed (the connection is then closed with its code).
 */
export type ThreadReport =
  | { kind: 'sharedRound'; round: number; loss: number; computeMs: number; byteLength: number; frame?: ArrayBuffer }
  | { kind: 'sharedFailed'; code: GanErrorCode; message: string };
