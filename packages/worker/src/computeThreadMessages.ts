import type { GanErrorCode } from '@ganfleet/shared/wire';
import type { BackendInfo } from '@ganfleet/shared/backends';
import type { GradientRequest, GradientResult } from '@ganfleet/shared/model';

/** Messages between the connection thread and the compute thread (structured clone, buffers transferred). */
export type ThreadRequest =
  | { kind: 'init'; id: number; backend: string; dataDir?: string }
  | { kind: 'start'; id: number; preset: string; params: Map<string, Float32Array> }
  | { kind: 'update'; id: number; params: Map<string, Float32Array> }
  | { kind: 'compute'; id: number; request: GradientRequest };

export type ThreadReply =
  | { kind: 'ready'; id: number; backend: BackendInfo; dataset: { name: string; count: number; fingerprint: string } }
  | { kind: 'ok'; id: number }
  | { kind: 'result'; id: number; result: GradientResult }
  | { kind: 'error'; id: number; code: GanErrorCode; message: string };
