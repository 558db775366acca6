import type { GanErrorCode, WireDtype } from '@ganfleet/shared/wire';
import type { BackendInfo } from '@ganfleet/shared/backends';

/**
 * Messages between the connection thread and the compute thread (structured clone, buffers
 * transferred, never copied). A round is one message each way: the round's frame as it came off
 * the socket (with a spare buffer for the reply), and the gradients frame ready to send (with the
 * round's buffer handed back, to receive the next round into).
 */
export type ThreadRequest =
  | { kind: 'init'; id: number; backend: string; dataDir?: string; threads?: number }
  | { kind: 'start'; id: number; preset: string; welcome: ArrayBuffer }
  | { kind: 'round'; id: number; frame: ArrayBuffer; frameLength: number; spare?: ArrayBuffer };

export type ThreadReply =
  | { kind: 'ready'; id: number; backend: BackendInfo; dataset: { name: string; count: number; fingerprint: string } }
  | { kind: 'started'; id: number; wireDtype: WireDtype }
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
