import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '@ganfleet/shared/backends';
import { type CoordinatorHandle, startCoordinator } from '@ganfleet/coordinator';
import { fetchGenerator } from '@ganfleet/worker';
import { exited, loopback, memoryLogger, spawnWorker, testRun, waitFor } from './helpers/cluster.js';
import { selfSignedCert } from './helpers/tls.js';

const settings = testRun({ seed: 5, batchSize: 8, steps: 100_000 });
const server = (extra: Parameters<typeof loopback>[0] = {}) => loopback({ exitWhenDone: false, handshakeTimeoutS: 2, ...extra });

/** Opens a WebSocket with `token` in the upgrade's Authorization header; resolves to the HTTP answer when it is refused. */
function upgradeWith(url: string, token: string | undefined): Promise<{ status: number; body: string; headers: IncomingHttpHeaders }> {
  const ws = new WebSocket(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return new Promise((resolve, reject) => {
    ws.on('open', () => reject(new Error('upgraded')));
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    ws.on('error', () => undefined);
  });
}

beforeAll(async () => {
  await selectBackend('wasm');
});
afterAll(async () => {
  await selectBackend('cpu');
});

describe('authentication and limits', () => {
  let coordinator: CoordinatorHandle;
  const { log, lines } = memoryLogger('info');
  const token = 'correct-horse-battery-staple';
  let honest: ReturnType<typeof spawnWorker>;

  beforeAll(async () => {
    coordinator = await startCoordinator({ settings, server: server({ token, maxConnections: 40, maxAuthFailuresPerMinute: 1000 }), log });
    honest = spawnWorker(coordinator.url, ['--token', token]);
    await waitFor(() => coordinator.run.round > 2, 30_000, 'the honest worker to train');
  });
  afterAll(async () => {
    honest.kill('SIGKILL');
    await exited(honest);
    await coordinator.close();
  });

  for (const [what, given] of [
    ['no token', undefined],
    ['a wrong token', 'correct-horse-battery-stapler'],
  ] as const) {
    it(`refuses ${what} at the upgrade with 401, tells nothing about the run, logs no secret`, async () => {
      const before = coordinator.run.round;
      const { status, body, headers } = await upgradeWith(coordinator.url, given);
      expect(status).toBe(401);
      expect(headers['www-authenticate']).toBe('Bearer');
      expect(body).toBe(`${given ? 'invalid token' : 'a token is required'}: Authorization: Bearer <token>, or ?token=<token>\n`);
      expect(JSON.stringify(lines)).not.toContain(token);
      if (given) expect(JSON.stringify(lines)).not.toContain(given);
      expect(lines.some((l) => l.code === 'UNAUTHORIZED')).toBe(true);
      await waitFor(() => coordinator.run.round > before, 10_000, 'training to go on');
    });
  }

  it('fetch needs the token too', async () => {
    const out = await mkdtemp(join(tmpdir(), 'ganfleet-fetch-'));
    try {
      await expect(fetchGenerator({ url: coordinator.url, out })).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
      const got = await fetchGenerator({ url: coordinator.url, out, token });
      expect(got.step).toBeGreaterThanOrEqual(0);
      expect(JSON.parse(await readFile(join(out, 'model.json'), 'utf8')).format).toBe('layers-model');
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it('a 1 GiB length claim is refused from the frame header (1009), before any allocation', async () => {
    const rss = process.memoryUsage().rss;
    const code = await new Promise<number>((resolve, reject) => {
      const socket = connect(coordinator.port, '127.0.0.1', () => {
        socket.write(
          `GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer ${token}\r\n\r\n`,
        );
      });
      let buf = Buffer.alloc(0);
      let upgraded = false;
      socket.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (!upgraded && buf.includes('\r\n\r\n')) {
          upgraded = true;
          expect(buf.toString()).toMatch(/^HTTP\/1.1 101/);
          buf = buf.subarray(buf.indexOf('\r\n\r\n') + 4);
          // FIN + binary, masked, 64-bit length = 2^30, then the mask key: no payload follows.
          const header = Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0x40, 0, 0, 0, 1, 2, 3, 4]);
          socket.write(header);
        }
        // Close frame from the server: 0x88, length, then the 2-byte code.
        const at = buf.indexOf(0x88);
        if (upgraded && at >= 0 && buf.length >= at + 4) resolve(buf.readUInt16BE(at + 2));
      });
      socket.on('error', reject);
      socket.on('close', () => resolve(-1));
    });
    expect(code).toBe(1009);
    expect(process.memoryUsage().rss - rss).toBeLessThan(256 * 1024 * 1024);
  });

  it('a slowloris handshake is cut after the handshake timeout', async () => {
    const started = Date.now();
    await new Promise<void>((resolve) => {
      const socket = connect(coordinator.port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\n'));
      const drip = setInterval(() => socket.writable && socket.write(`X-Slow-${Date.now()}: 1\r\n`), 300);
      socket.on('close', () => {
        clearInterval(drip);
        resolve();
      });
      socket.on('error', () => undefined);
    });
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(server().handshakeTimeoutS * 1000 - 100);
    expect(elapsed).toBeLessThan(server().handshakeTimeoutS * 1000 + 3000);
  });

  it('200 authenticated connections at once: the ones over --max-connections are refused (503) and training goes on', async () => {
    const before = coordinator.run.round;
    const sockets: WebSocket[] = [];
    // All held open until every attempt has an answer, so they compete for the slots.
    const outcomes = await Promise.all(
      Array.from(
        { length: 200 },
        () =>
          new Promise<string>((resolve) => {
            const ws = new WebSocket(coordinator.url, { headers: { authorization: `Bearer ${token}` } });
            sockets.push(ws);
            ws.on('open', () => resolve('open'));
            ws.on('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
            ws.on('error', () => resolve('error'));
          }),
      ),
    );
    for (const ws of sockets) ws.terminate();
    const opened = outcomes.filter((o) => o === 'open').length;
    expect(opened).toBeLessThanOrEqual(40);
    expect(outcomes.filter((o) => o === '503').length).toBeGreaterThanOrEqual(160);
    expect(lines.some((l) => l.code === 'TOO_MANY_CONNECTIONS' && l.msg === 'connection limit reached')).toBe(true);
    await waitFor(() => coordinator.run.round > before + 2, 20_000, 'training to go on');
    for (const values of coordinator.run.store.params.values()) expect(values.every(Number.isFinite)).toBe(true);
  });
});

// Failure budgets, lockout attempts and the loopback decision: tests/edgeAttacks.test.ts.
describe('token generation', () => {
  it('generates a token when binding a non-loopback address without one', async () => {
    const { log, lines } = memoryLogger('info');
    const coordinator = await startCoordinator({ settings, server: server({ host: '0.0.0.0' }), log });
    try {
      expect(coordinator.tokenGenerated).toBe(true);
      expect(coordinator.token?.length).toBeGreaterThanOrEqual(24);
      expect(JSON.stringify(lines)).not.toContain(coordinator.token as string);
    } finally {
      await coordinator.close();
    }
  });
});

describe('TLS', () => {
  it('serves wss:// with a self-signed certificate; a worker trusting it with --ca trains', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ganfleet-tls-'));
    try {
      const { cert, key } = selfSignedCert(dir);
      const { log } = memoryLogger('warn');
      const coordinator = await startCoordinator({
        settings: { ...settings, schedule: { ...settings.schedule, steps: 3 } },
        server: server({ exitWhenDone: true, tls: { cert: await readFile(cert), key: await readFile(key) } }),
        log,
      });
      expect(coordinator.url).toMatch(/^wss:\/\//);
      // Without trusting the certificate the TLS handshake fails.
      await expect(fetchGenerator({ url: coordinator.url, out: join(dir, 'g') })).rejects.toThrow(/self[- ]signed|certificate/i);
      const worker = spawnWorker(coordinator.url, ['--ca', cert]);
      const run = await coordinator.done;
      expect(run.round).toBe(run.schedule.totalRounds);
      expect(await exited(worker)).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
