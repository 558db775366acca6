import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@ganfleet/shared/log';
import type { GeneratorArtifacts } from '@ganfleet/shared/model';
import type { Coordinator } from './coordinator.js';
import { DASHBOARD_CSP, DASHBOARD_HTML } from './dashboard/dashboardPage.js';
import { LossHistory, type LossHistoryJson } from './dashboard/lossHistory.js';
import { createMetrics } from './metrics.js';
import type { RequestGate } from './requestGate.js';

/** GET /history: the loss curves and the step of the newest sample grid (null before the first). */
export interface HistoryResponse extends LossHistoryJson {
  samplesStep: number | null;
}

interface HttpReply {
  status: number;
  type: string;
  body: string | Uint8Array;
  headers?: Record<string, string>;
}

/** Generator artifacts of this many recent steps stay available to `?step=` requests. */
const GENERATOR_STEPS_KEPT = 4;

/**
 * HTTP on the coordinator's port (everything that is not a WebSocket upgrade): metrics,
 * status, samples, the generator and the dashboard. Admitted by the same gate as the workers'
 * upgrades (token, failure budget, malformed targets).
 */
export function createHttpHandler(coordinator: Coordinator, gate: RequestGate, log: Logger): (req: IncomingMessage, res: ServerResponse) => void {
  const metrics = createMetrics(coordinator);
  const history = new LossHistory();
  let samplesStep: number | null = null;
  coordinator.events.on('round', (r) => history.record(r));
  coordinator.events.on('samplesWritten', (s) => (samplesStep = s.step));
  const generator = generatorCache(coordinator);

  const routes: Record<string, (url: URL) => Promise<HttpReply> | HttpReply> = {
    '/': () => ({ status: 200, type: 'text/html; charset=utf-8', body: DASHBOARD_HTML, headers: { 'content-security-policy': DASHBOARD_CSP } }),
    '/status': () => json(coordinator.status()),
    '/history': () => json({ ...history.toJSON(), samplesStep } satisfies HistoryResponse),
    '/metrics': async () => ({ status: 200, type: metrics.contentType, body: await metrics.metrics() }),
    '/samples/latest.png': async () => {
      const path = coordinator.latestSamplesPath;
      if (!path || samplesStep === null) return text(404, 'no samples yet');
      return { status: 200, type: 'image/png', body: await readFile(path), headers: { 'x-ganfleet-step': String(samplesStep) } };
    },
    '/generator/model.json': (url) => generator(url, (a) => ({ type: 'application/json', body: a.modelJson })),
    '/generator/weights.bin': (url) => generator(url, (a) => ({ type: 'application/octet-stream', body: a.weights })),
  };

  const respond = async (req: IncomingMessage): Promise<HttpReply> => {
    const admission = gate.admit(req);
    if (!admission.ok)
      return { ...text(admission.refusal.status, admission.refusal.message), ...(admission.refusal.headers ? { headers: admission.refusal.headers } : {}) };
    const { url } = admission;
    const route = routes[url.pathname];
    if (!route) return text(404, 'not found');
    if (req.method !== 'GET' && req.method !== 'HEAD') return { ...text(405, 'method not allowed'), headers: { allow: 'GET, HEAD' } };
    return route(url);
  };

  return (req, res) => {
    void respond(req)
      .catch((err: unknown) => {
        log.error({ code: 'INTERNAL', err: err instanceof Error ? err.message : String(err) }, 'HTTP handler failed');
        return text(500, 'internal error');
      })
      .then((r) => {
        res.writeHead(r.status, { 'content-type': r.type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...r.headers }).end(r.body);
      });
  };
}

function text(status: number, message: string): HttpReply {
  return { status, type: 'text/plain; charset=utf-8', body: `${message}\n` };
}

function json(value: unknown): HttpReply {
  return { status: 200, type: 'application/json', body: JSON.stringify(value) };
}

/**
 * Generator artifacts are built once per step and kept for a few steps, so model.json and
 * weights.bin fetched with the same `?step=` always match: TensorFlow.js's loadLayersModel
 * passes model.json's query on to the weights request. Without `?step=`: the current step.
 */
function generatorCache(coordinator: Coordinator) {
  const cache = new Map<number, Promise<GeneratorArtifacts>>();
  return async (url: URL, pick: (a: GeneratorArtifacts) => { type: string; body: string | Uint8Array }): Promise<HttpReply> => {
    const current = coordinator.run.iteration;
    const asked = url.searchParams.get('step');
    const step = asked === null ? current : Number(asked);
    let artifacts = cache.get(step);
    if (!artifacts) {
      if (step !== current) return text(404, `the generator of step ${asked} is no longer available (current step: ${current})`);
      // Read synchronously here: the step and the parameters it is built from belong together.
      artifacts = coordinator.generator();
      cache.set(step, artifacts);
      artifacts.catch(() => cache.delete(step));
      for (const old of cache.keys()) if (cache.size > GENERATOR_STEPS_KEPT) cache.delete(old);
    }
    return { status: 200, ...pick(await artifacts), headers: { 'x-ganfleet-step': String(step) } };
  };
}
