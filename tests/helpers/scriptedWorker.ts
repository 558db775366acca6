import WebSocket from 'ws';
import {
  type CoordinatorToWorker,
  type Message,
  PROTOCOL_VERSION,
  type PeerRole,
  type RestEntry,
  type Round,
  encodeMessage,
  encodeTensors,
  parseCoordinatorMessage,
} from '@ganfleet/shared/wire';
import { getPreset, specsOf } from '@ganfleet/shared/model';

/** Gradients of `round`'s phase, every value `value` (then `edit`ed, tensor by tensor), as a worker's reply message. */
export function filledGradients(presetName: string, round: Round, value: number, edit: (values: Float32Array, i: number) => void = () => undefined) {
  const tensors = specsOf(getPreset(presetName), round.phase).map((s, i) => {
    const values = new Float32Array(s.shape.reduce((a, b) => a * b, 1)).fill(value);
    edit(values, i);
    return { name: s.name, shape: s.shape, values };
  });
  return {
    type: 'gradients' as const,
    round: round.round,
    phase: round.phase,
    samples: round.batchSize,
    loss: 0.5,
    computeMs: 1,
    grads: encodeTensors(tensors),
  };
}

/** A relay's reply to `round` for one slot: sums of `value` per sample (then `edit`ed), with `rest` entries. */
export function filledSums(presetName: string, round: Round, value: number, rest: RestEntry[] = [], dtype: 'float64' | 'float32' = 'float64') {
  const Values = dtype === 'float64' ? Float64Array : Float32Array;
  const tensors = specsOf(getPreset(presetName), round.phase).map((s) => ({
    name: s.name,
    shape: s.shape,
    values: new Values(s.shape.reduce((a, b) => a * b, 1)).fill(value * round.batchSize),
  }));
  return {
    type: 'sums' as const,
    round: round.round,
    phase: round.phase,
    samples: round.batchSize,
    loss: 0.5,
    used: [0],
    computeMs: 1,
    sums: encodeTensors(tensors, dtype),
    ...(rest.length ? { rest } : {}),
  };
}

/**
 * A worker (or, with role 'relay', a relay of one leaf) the test scripts: it joins, and answers each round with what `answer` returns (a
 * message to send, or undefined to stay silent; ws still answers pings, as a hung compute thread's
 * connection does). `closed` says how the coordinator ended it.
 */
export class ScriptedWorker {
  readonly ws: WebSocket;
  readonly closed: Promise<{ code: number; reason: string }>;
  rounds = 0;

  constructor(url: string, answer: (round: Round, n: number) => Message | undefined, headers: Record<string, string> = {}, role: PeerRole = 'worker') {
    this.ws = new WebSocket(url, { maxPayload: 0, headers });
    this.ws.on('open', () =>
      this.ws.send(
        encodeMessage({ type: 'hello', version: PROTOCOL_VERSION, role, backend: 'scripted', device: 'test', capabilities: { wireDtypes: ['float32'] } }),
      ),
    );
    this.ws.on('message', (data, isBinary) => {
      const msg: CoordinatorToWorker = parseCoordinatorMessage(data, isBinary);
      if (msg.type === 'welcome' && role === 'relay') this.ws.send(encodeMessage({ type: 'leaves', count: 1, children: [] }));
      if (msg.type !== 'round') return;
      const reply = answer(msg, this.rounds++);
      if (reply) this.ws.send(encodeMessage(reply));
    });
    this.ws.on('error', () => undefined);
    this.closed = new Promise((resolve) => this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  close(): void {
    this.ws.terminate();
  }
}
