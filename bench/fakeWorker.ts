/*
 * A worker that computes nothing: it joins and answers every round at once with fixed gradients
 * (and batch-norm statistics) of the right shapes, so that a fleet bench measures what the
 * coordinator costs per worker, not what the workers compute. Usage (bench/fleet.ts starts it):
 *   node --import tsx bench/fakeWorker.ts URL TOKEN
 */
import WebSocket from 'ws';
import { FrameJoiner, sendFragmented } from '@ganfleet/shared/link';
import { PROTOCOL_VERSION, encodeFrame, encodeMessage, parseCoordinatorMessage } from '@ganfleet/shared/wire';
import { getPreset, sizeOf, specsOf } from '@ganfleet/shared/model';
import type { Phase } from '@ganfleet/shared/wire';

const [url, token] = process.argv.slice(2);
if (!url) throw new Error('usage: fakeWorker.ts URL [TOKEN]');

const ws = new WebSocket(url, {
  maxPayload: 0,
  generateMask: (mask: Buffer) => void mask.fill(0),
  ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
});
let sets: Record<Phase, Record<string, { name: string; shape: number[]; values: Float32Array }[]>> | undefined;
let out: Uint8Array = new Uint8Array(0);
// Received and sent as a real worker does (see UpstreamLink and WorkerSession).
const joiner = new FrameJoiner();
ws.binaryType = 'fragments';

ws.on('open', () =>
  ws.send(
    encodeMessage({ type: 'hello', version: PROTOCOL_VERSION, role: 'worker', backend: 'fake', device: 'bench', capabilities: { wireDtypes: ['float32'] } }),
  ),
);
ws.on('message', (data, isBinary) => {
  const msg = parseCoordinatorMessage(joiner.join(data), isBinary);
  joiner.release();
  if (msg.type === 'welcome') {
    const preset = getPreset(msg.run.preset);
    const fill = (shape: number[], v: number) => new Float32Array(sizeOf(shape)).fill(v);
    const grads = (phase: Phase) => specsOf(preset, phase).map((s) => ({ name: s.name, shape: s.shape, values: fill(s.shape, 1e-3) }));
    // [means, variances]: zeros, then ones.
    const stats = preset.batchNorms.map((bn) => {
      const channels = sizeOf(preset.params.find((p) => p.name === bn.movingMean)?.shape ?? [0]);
      return { name: bn.layer, shape: [2 * channels], values: new Float32Array(2 * channels).fill(1, channels) };
    });
    sets = { D: { grads: grads('D') }, G: stats.length ? { grads: grads('G'), stats } : { grads: grads('G') } };
    return;
  }
  if (msg.type === 'bye') process.exit(0);
  if (msg.type !== 'round' || !sets) return;
  const fields = { type: 'gradients', round: msg.round, phase: msg.phase, samples: msg.batchSize, loss: 0.7, computeMs: 0 };
  const frame = encodeFrame(fields, sets[msg.phase], 'float32', out);
  out = frame.byteLength > out.byteLength ? frame : out;
  sendFragmented(ws, [frame]);
});
ws.on('close', () => process.exit(0));
