import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator } from '@ganfleet/coordinator';
import { exited, loopback, memoryLogger, spawnWorker, testRun } from './helpers/cluster.js';

const TOKEN = 'http-api-test-token';
const STEPS = 20;

/** A coordinator of its own (no worker yet), its base URL, an authorised GET, and the auth failures it announced. */
async function serve(maxAuthFailuresPerMinute = 100) {
  const out = await mkdtemp(join(tmpdir(), 'ganfleet-http-'));
  const coordinator = await startCoordinator({
    settings: testRun({ seed: 5, batchSize: 8, steps: STEPS, sampleEvery: 5, out }),
    server: loopback({ exitWhenDone: false, token: TOKEN, maxAuthFailuresPerMinute }),
    log: memoryLogger('warn').log,
  });
  const base = `http://127.0.0.1:${coordinator.port}`;
  const authFailures: string[] = [];
  coordinator.events.on('authFailed', ({ remote }) => authFailures.push(remote));
  const get = (path: string, init: RequestInit = {}) => fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...init.headers } });
  const close = async () => {
    await coordinator.close();
    await rm(out, { recursive: true, force: true });
  };
  return { coordinator, base, get, authFailures, close };
}

/** The coordinator's HTTP API, as a scraper or a browser uses it: each block has its own coordinator, so the tests run in any order. */
describe('coordinator HTTP API before any worker', () => {
  let api: Awaited<ReturnType<typeof serve>>;
  let base: string;
  let get: (path: string, init?: RequestInit) => Promise<Response>;
  beforeAll(async () => {
    api = await serve();
    ({ base, get } = api);
  });
  afterAll(async () => api.close());

  it('refuses a missing or wrong token with 401, and counts each failure', async () => {
    const { authFailures } = api;
    const before = authFailures.length;
    for (const init of [{}, { headers: { authorization: 'Bearer nope' } }, { headers: { authorization: `Basic ${TOKEN}` } }]) {
      const res = await fetch(`${base}/status`, init);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
    }
    expect((await fetch(`${base}/status?token=nope`)).status).toBe(401);
    expect(authFailures).toHaveLength(before + 4);
    expect(authFailures.every((r) => r.endsWith('127.0.0.1'))).toBe(true);
    const metrics = await (await get('/metrics')).text();
    expect(metrics).toMatch(new RegExp(`^ganfleet_auth_failures_total ${before + 4}$`, 'm'));
  });

  it('accepts the token as a bearer header or a query parameter', async () => {
    const byHeader = await get('/status');
    expect(byHeader.status).toBe(200);
    expect(byHeader.headers.get('content-type')).toBe('application/json');
    const status = await byHeader.json();
    expect(status).toMatchObject({ runId: api.coordinator.status().runId, preset: 'mlp', state: 'waiting', step: 0, steps: STEPS, workers: [] });
    expect((await fetch(`${base}/status?token=${TOKEN}`)).status).toBe(200);
    expect((await fetch(`${base}/status`, { headers: { authorization: `bearer ${TOKEN}` } })).status).toBe(200);
  });

  it('answers unknown paths with 404 and other methods than GET with 405', async () => {
    expect((await get('/nope')).status).toBe(404);
    expect((await get('/status/')).status).toBe(404);
    const post = await get('/status', { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect((await get('/metrics', { method: 'DELETE' })).status).toBe(405);
  });

  it('has no samples before the first grid is written', async () => {
    expect((await get('/samples/latest.png')).status).toBe(404);
    expect(await (await get('/history')).json()).toEqual({ D: [], G: [], stride: { D: 1, G: 1 }, samplesStep: null });
  });

  it('serves the dashboard as one self-contained page under a strict CSP', async () => {
    const res = await get('/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'.*script-src 'sha256-/);
    const html = await res.text();
    expect(html).toContain('<canvas id="loss"');
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it('slows an address that used up its failed attempts with 429, but never refuses the right token', async () => {
    const strict = await serve(1);
    try {
      expect((await fetch(`${strict.base}/status?token=nope`)).status).toBe(401);
      expect((await fetch(`${strict.base}/status?token=nope`)).status).toBe(429);
      expect((await strict.get('/status')).status).toBe(200);
      expect(strict.authFailures).toHaveLength(2);
    } finally {
      await strict.close();
    }
  });
});

describe('coordinator HTTP API during and after a run', () => {
  let api: Awaited<ReturnType<typeof serve>>;
  let base: string;
  let get: (path: string, init?: RequestInit) => Promise<Response>;
  /** /metrics as scraped while the worker was computing. */
  let midRun = '';
  beforeAll(async () => {
    api = await serve();
    ({ base, get } = api);
    const worker = spawnWorker(api.coordinator.url, ['--token', TOKEN]);
    try {
      const computeOfW1 = (text: string): number => Number(/^ganfleet_worker_compute_seconds\{worker="w1"\} (\S+)$/m.exec(text)?.[1] ?? 0);
      // Scraped as Prometheus would, until the worker's first round shows.
      const until = Date.now() + 60_000;
      while (!(computeOfW1(midRun) > 0) && Date.now() < until) midRun = await (await get('/metrics')).text();
      await api.coordinator.done;
    } finally {
      if (worker.exitCode === null) worker.kill();
      await exited(worker);
    }
  });
  afterAll(async () => api.close());

  it('exports Prometheus metrics while training, and the outputs once done', async () => {
    expect(midRun).toMatch(/^ganfleet_workers_connected 1$/m);
    const res = await get('/metrics');
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const metrics = await res.text();
    const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1]);
    const rounds = 2 + 2 * STEPS;
    expect(value('ganfleet_step')).toBe(STEPS);
    expect(value('ganfleet_rounds_total')).toBe(rounds);
    expect(value('ganfleet_rounds_per_second')).toBeGreaterThan(0);
    expect(value('ganfleet_bytes_in_total')).toBeGreaterThan(rounds * 1000);
    expect(value('ganfleet_bytes_out_total')).toBeGreaterThan(0);
    expect(value('ganfleet_straggler_lag_seconds')).toBe(0);
    expect(value('ganfleet_loss{network="D"}')).toBeGreaterThan(0);
    expect(value('ganfleet_loss{network="G"}')).toBeGreaterThan(0);
    expect(metrics).toMatch(/^# TYPE ganfleet_replies_dropped_total counter$/m);
    expect(metrics).toMatch(/^process_cpu_seconds_total \d/m);
    expect(metrics).toMatch(/^nodejs_heap_size_used_bytes \d/m);

    const history = await (await get('/history')).json();
    expect(history.D).toHaveLength(2 + STEPS);
    expect(history.G).toHaveLength(STEPS);
    expect(history.samplesStep).toBe(STEPS);
    expect(history.G[0]).toEqual([3, expect.any(Number)]);
  });
  it('serves the latest sample grid', async () => {
    const res = await get('/samples/latest.png');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('x-ganfleet-step')).toBe(String(STEPS));
    expect(Buffer.from(await res.arrayBuffer()).subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  });

  it('serves the generator as a matching model.json and weights.bin pair that TensorFlow.js loads', async () => {
    const modelRes = await get('/generator/model.json');
    expect(modelRes.headers.get('x-ganfleet-step')).toBe(String(STEPS));
    const manifest = (await modelRes.json()) as { weightsManifest: { paths: string[]; weights: { shape: number[] }[] }[] };
    expect(manifest.weightsManifest[0]?.paths).toEqual(['weights.bin']);
    const floats = (manifest.weightsManifest[0]?.weights ?? []).reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);
    const weights = await get(`/generator/weights.bin?step=${STEPS}`);
    expect(weights.headers.get('x-ganfleet-step')).toBe(String(STEPS));
    expect((await weights.arrayBuffer()).byteLength).toBe(floats * 4);
    expect((await get('/generator/weights.bin?step=3')).status).toBe(404);

    // As a browser would: the model URL's query (step pin and token) is passed on to the weights request.
    const model = await tf.loadLayersModel(`${base}/generator/model.json?step=${STEPS}&token=${TOKEN}`);
    const y = model.predict(tf.zeros([2, 100])) as tf.Tensor;
    expect(y.shape).toEqual([2, 28, 28, 1]);
    tf.dispose([y]);
    model.dispose();
  });
});
