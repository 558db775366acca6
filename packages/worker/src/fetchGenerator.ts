import WebSocket from 'ws';
import { GanError, PROTOCOL_VERSION, encodeMessage, parseCoordinatorMessage } from '@ganfleet/shared/wire';
import { upgradeHeaders, upgradeRefusal } from '@ganfleet/shared/link';

/** Downloads the coordinator's current (or final) generator into `out` as a LayersModel. */
export async function fetchGenerator(opts: {
  url: string;
  out: string;
  token?: string;
  ca?: string | Buffer;
  timeoutMs?: number;
}): Promise<{ step: number; dir: string }> {
  const ws = new WebSocket(opts.url, { maxPayload: 0, ...upgradeHeaders(opts.token), ...(opts.ca ? { ca: opts.ca } : {}) });
  const msg = await new Promise<ReturnType<typeof parseCoordinatorMessage>>((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new GanError('TIMEOUT', `no answer from ${opts.url}`));
    }, opts.timeoutMs ?? 60_000);
    ws.on('open', () => ws.send(encodeMessage({ type: 'fetchGenerator', version: PROTOCOL_VERSION })));
    ws.on('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      reject(upgradeRefusal(res.statusCode, Boolean(opts.token)));
      ws.terminate();
    });
    ws.on('message', (data, isBinary) => {
      clearTimeout(timer);
      try {
        resolve(parseCoordinatorMessage(data, isBinary));
      } catch (err) {
        reject(err);
      }
      ws.close(1000);
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(new GanError('WORKER_LOST', `cannot reach ${opts.url}: ${err.message}`));
    });
  });
  if (msg.type === 'refuse') throw new GanError(msg.code, `coordinator refused: ${msg.reason}`);
  if (msg.type !== 'generator') throw new GanError('BAD_MESSAGE', `expected a generator, got ${msg.type}`);
  // Loaded here, not at the top: it brings TensorFlow.js, which a worker's connection thread never needs.
  const { writeGeneratorArtifacts } = await import('@ganfleet/shared/model');
  await writeGeneratorArtifacts(opts.out, { modelJson: msg.modelJson, weights: msg.weights });
  return { step: msg.step, dir: opts.out };
}
