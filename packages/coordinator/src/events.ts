import { EventEmitter } from 'node:events';
import type { RoundLog } from './runLoop.js';

/** What a run announces (in-process or distributed); metrics, the dashboard, progress and tests listen here. */
export interface RunEventMap {
  round: [RoundLog];
  workerJoined: [{ worker: string; backend: string; device: string }];
  workerLeft: [{ worker: string; reason: string; lastRound: number }];
  /** A reply that arrived after --round-timeout closed its round, or from a worker dropped mid-round. */
  replyDropped: [{ worker: string; round: number; reason: string }];
  /** A WebSocket upgrade or HTTP request refused for a missing or wrong token (before any frame is read). */
  authFailed: [{ remote: string }];
  /** A round that would have made the state non-finite: not applied, computed again. */
  roundRejected: [{ round: number; reason: string }];
  samplesWritten: [{ step: number; path: string }];
  paused: [{ workers: number; minWorkers: number }];
  resumed: [{ workers: number }];
  finished: [{ step: number }];
  /** Generator quality (see runEvaluation.ts): FID, modes, IS, optionally Parzen. */
  evaluated: [{ step: number } & Record<string, number>];
}

export class RunEvents extends EventEmitter<RunEventMap> {}
