import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, encodeMessage, parseCoordinatorMessage } from '@ganfleet/shared/wire';
import { selectBackend } from '@ganfleet/shared/backends';
import { type CoordinatorHandle, PRE_JOIN_MAX_BYTES, startCoordinator } from '@ganfleet/coordinator';
import { ganfleetArgv } from 'ganfleet';
import { TEST_DATA, exited, loopback, memoryLogger, spawnCli, spawnWorker, testRun, waitFor } from './helpers/cluster.js';

/**
 * Issue 15's network edge: what a peer without the token (or with it, before hello) can make the
 * coordinator do. Real coordinator on port 0, honest worker processes training beside the attacker.
 */

const TOKEN = 'edge-attacks-test-token-0123456789';
const settings = testRun({ seed: 7, batchSize: 8, steps: 100_000 });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

interface UpgradeOptions {
  token?: string;
  origin?: string;
  localAddress?: string;
}

/** One WebSocket upgrade: 101 with the open socket, or the HTTP status it was refused with. */
function upgrade(url: string, opts: UpgradeOptions = {}): Promise<{ status: number; ws: WebSocket }> {
  const ws = new WebSocket(url, {
    ...(opts.token ? { headers: bearer(opts.token) } : {}),
    ...(opts.origin ? { origin: opts.origin } : {}),
    ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
  });
  return new Promise((resolve, reject) => {
    ws.on('open', () => resolve({ status: 101, ws }));
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0, ws });
      ws.terminate();
    });
    ws.on('error', (err) => reject(err));
  });
}

/** Upgrades with `token`, says hello and returns the type of the coordinator's first answer ('welcome' on joining). */
async function joinRun(url: string, token: string, localAddress?: string): Promise<string> {
  const { status, ws } = await upgrade(url, { token, ...(localAddress ? { localAddress } : {}) });
  if (status !== 101) return `HTTP ${status}`;
  const first = new Promise<string>((resolve) => ws.once('message', (data, isBinary) => resolve(parseCoordinatorMessage(data, isBinary).type)));
  ws.send(
    encodeMessage({ type: 'hello', version: PROTOCOL_VERSION, role: 'worker', backend: 'test', device: 'edge', capabilities: { wireDtypes: ['float32'] } }),
  );
  const type = await first;
  ws.terminate();
  return type;
}

/** GET over HTTP from a chosen local address (fetch cannot pick one); resolves to the status. */
function httpStatus(port: number, path: string, opts: { token?: string; localAddress?: string } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, headers: opts.token ? bearer(opts.token) : {}, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Writes `bytes` on a raw TCP connection and resolves to everything the server sent back until it closed. */
function raw(port: number, ...chunks: (string | Buffer)[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      for (const c of chunks) socket.write(c);
    });
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    socket.on('close', () => resolve(got));
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? undefined : reject(err)));
  });
}

/**
 * The built CLI with stderr captured (so it is never a terminal: `train` then logs JSON lines, not a progress bar);
 * JSON lines from stdout go to `lines` as they come.
 */
function run(args: string[], lines: Record<string, unknown>[] = []): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ganfleetArgv(args), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout }).on('line', (line) => line.startsWith('{') && lines.push(JSON.parse(line) as Record<string, unknown>));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

const upgradeRequest = (target: string, headers = '') =>
  `GET ${target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${headers}\r\n`;

/** The parse-amplification frame: a msgpack array of 3 M empty maps (3 MB on the wire, hundreds of MB once decoded), in one masked binary frame. */
function emptyMapsFrame(): Buffer {
  const n = 3_000_000;
  const payload = Buffer.alloc(5 + n, 0x80);
  payload[0] = 0xdd;
  payload.writeUInt32BE(n, 1);
  // FIN + binary; masked 64-bit length; an all-zero mask leaves the payload as is.
  const header = Buffer.alloc(14);
  header[0] = 0x82;
  header[1] = 0xff;
  header.writeBigUInt64BE(BigInt(payload.length), 2);
  return Buffer.concat([header, payload]);
}

/** The close frame among the frames after a 101 answer (a server's frames are unmasked). */
function closeFrameIn(answer: string): { code: number; reason: string } | undefined {
  const bytes = Buffer.from(answer, 'latin1');
  for (let at = bytes.indexOf('\r\n\r\n') + 4; at + 2 <= bytes.length;) {
    let length = bytes.readUInt8(at + 1) & 0x7f;
    let start = at + 2;
    if (length === 126) {
      length = bytes.readUInt16BE(start);
      start += 2;
    }
    if ((bytes.readUInt8(at) & 0x0f) === 8) return { code: bytes.readUInt16BE(start), reason: bytes.toString('utf8', start + 2, start + length) };
    at = start + length;
  }
  return undefined;
}

/** Polls /status every 20 ms while `attack` runs; resolves to the slowest answer and the largest heap growth seen. */
async function statusUnder(port: number, attack: Promise<unknown>): Promise<{ slowestMs: number; heapGrowthMB: number }> {
  let running = true;
  void attack.finally(() => (running = false));
  const heap0 = process.memoryUsage().heapUsed;
  let slowestMs = 0;
  let heapGrowthMB = 0;
  while (running) {
    const t = performance.now();
    expect(await httpStatus(port, '/status', { token: TOKEN })).toBe(200);
    slowestMs = Math.max(slowestMs, performance.now() - t);
    heapGrowthMB = Math.max(heapGrowthMB, (process.memoryUsage().heapUsed - heap0) / 2 ** 20);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { slowestMs, heapGrowthMB };
}

beforeAll(async () => {
  await selectBackend('wasm');
});
afterAll(async () => {
  await selectBackend('cpu');
});

describe('a peer without the token gets nothing but a refusal', () => {
  let coordinator: CoordinatorHandle;
  const { log, lines } = memoryLogger('info');
  const honest: ReturnType<typeof spawnWorker>[] = [];

  beforeAll(async () => {
    // Few slots, so that idle sockets would fill them at once if unauthenticated peers could hold any.
    coordinator = await startCoordinator({ settings, server: loopback({ exitWhenDone: false, token: TOKEN, maxConnections: 8, handshakeTimeoutS: 10 }), log });
  });
  afterAll(async () => {
    for (const w of honest) w.kill('SIGKILL');
    await Promise.all(honest.map(exited));
    await coordinator.close();
  });

  it('100 token-less sockets, reopened as soon as refused, hold no slot: 3 honest workers join and train, none refused for the limit', async () => {
    let attacking = true;
    const outcomes = new Map<number, number>();
    const attacker = async (): Promise<void> => {
      while (attacking) {
        const { status } = await upgrade(coordinator.url);
        outcomes.set(status, (outcomes.get(status) ?? 0) + 1);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    const attackers = Array.from({ length: 100 }, attacker);
    try {
      await waitFor(() => (outcomes.get(401) ?? 0) + (outcomes.get(429) ?? 0) >= 100, 30_000, '100 refused attempts');
      const joined: string[] = [];
      coordinator.events.on('workerJoined', (w) => joined.push(w.worker));
      const started = Date.now();
      for (let i = 0; i < 3; i++) honest.push(spawnWorker(coordinator.url, ['--token', TOKEN]));
      await waitFor(() => joined.length >= 3, 60_000, 'the 3 honest workers to join');
      console.log(`edgeAttacks: 3 honest worker processes joined ${Date.now() - started} ms after starting, under the token-less flood`);
      const round = coordinator.run.round;
      await waitFor(() => coordinator.run.round > round + 3, 60_000, 'training with the honest workers');
    } finally {
      attacking = false;
      await Promise.all(attackers);
    }
    expect(outcomes.get(101)).toBeUndefined();
    expect((outcomes.get(401) ?? 0) + (outcomes.get(429) ?? 0)).toBeGreaterThanOrEqual(100);
    expect(lines.filter((l) => l.code === 'TOO_MANY_CONNECTIONS')).toEqual([]);
    expect(coordinator.status().workers).toHaveLength(3);
  });

  it('a 3 MB frame of empty msgpack maps is never parsed: without the token it gets no socket, with it (before hello) it is cut at 64 KiB', async () => {
    await waitFor(() => coordinator.status().workers.length >= 3 && coordinator.run.round, 60_000, 'the honest workers of the test above to train');
    const frame = emptyMapsFrame();
    const before = lines.length;
    const round = coordinator.run.round;
    // Four attackers each way, each sending the upgrade request and the frame right behind it, without waiting for an answer.
    const tokenless = Array.from({ length: 4 }, () => raw(coordinator.port, upgradeRequest('/'), frame));
    const preHello = Array.from({ length: 4 }, () => raw(coordinator.port, upgradeRequest('/', `Authorization: Bearer ${TOKEN}\r\n`), frame));
    const { slowestMs, heapGrowthMB } = await statusUnder(coordinator.port, Promise.all([...tokenless, ...preHello]));
    const quiet = await statusUnder(coordinator.port, new Promise((resolve) => setTimeout(resolve, 2000)));
    console.log(
      `edgeAttacks: /status under 8 × 3 MB frames: slowest ${Math.round(slowestMs)} ms, heap growth ${Math.round(heapGrowthMB)} MB; then 2 s without attack: slowest ${Math.round(quiet.slowestMs)} ms`,
    );
    // 429 once this address has used up its failure budget (the flood above did).
    for (const answer of await Promise.all(tokenless)) expect(answer).toMatch(/^HTTP\/1.1 (401|429) /);
    for (const answer of await Promise.all(preHello)) {
      expect(answer).toMatch(/^HTTP\/1.1 101 /);
      expect(closeFrameIn(answer)).toEqual({ code: 1009, reason: `TOO_LARGE: more than ${PRE_JOIN_MAX_BYTES} bytes before hello` });
    }
    const refused = lines.slice(before).filter((l) => l.msg === `connection refused: more than ${PRE_JOIN_MAX_BYTES} bytes before hello`);
    expect(refused).toHaveLength(4);
    expect(refused.every((l) => l.code === 'TOO_LARGE' && l.level === 40)).toBe(true);
    // A parsed frame would have been refused as BAD_MESSAGE (an array, not a hello).
    expect(lines.slice(before).filter((l) => l.code === 'BAD_MESSAGE' || l.code === 'BAD_FRAME')).toEqual([]);
    // Generous bounds (training and the attackers share this 2-vCPU test process): decoding the frames stalled /status 4.2–5.4 s before.
    expect(slowestMs).toBeLessThan(1000);
    expect(heapGrowthMB).toBeLessThan(128);
    await waitFor(() => coordinator.run.round > round + 3, 30_000, 'training to go on');
  });
});

describe('a malformed request', () => {
  it('gets 400 and a coded warn line, not 500 and INTERNAL, and counts as a failure', async () => {
    const { log, lines } = memoryLogger('info');
    const coordinator = await startCoordinator({ settings, server: loopback({ exitWhenDone: false, token: TOKEN, maxAuthFailuresPerMinute: 6 }), log });
    try {
      for (const target of ['//[', '/status?token=%zz', '/%E0%A4%A']) {
        expect(await raw(coordinator.port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`), target).toMatch(/^HTTP\/1.1 400 /);
        expect(await raw(coordinator.port, upgradeRequest(target)), `upgrade ${target}`).toMatch(/^HTTP\/1.1 400 /);
      }
      const warned = lines.filter((l) => l.code === 'BAD_MESSAGE' && l.level === 40);
      expect(warned.map((l) => l.msg).sort()).toEqual([
        ...Array<string>(3).fill('HTTP request refused: malformed request target'),
        ...Array<string>(3).fill('connection refused: malformed request target'),
      ]);
      expect(lines.filter((l) => (l.level as number) >= 50 || l.code === 'INTERNAL')).toEqual([]);
      // The six used up this address's budget: a wrong token now gets 429, the right one still gets in.
      expect(await httpStatus(coordinator.port, '/status', { token: 'guess' })).toBe(429);
      expect(await httpStatus(coordinator.port, '/status', { token: TOKEN })).toBe(200);
    } finally {
      await coordinator.close();
    }
  });
});

describe('failed tokens slow attackers down but never lock out the right token', () => {
  it('many wrong tokens from 127.0.0.1, then the right token from the same address joins at once, over WebSocket and HTTP', async () => {
    const { log, lines } = memoryLogger('info');
    const coordinator = await startCoordinator({ settings, server: loopback({ exitWhenDone: false, token: TOKEN, maxAuthFailuresPerMinute: 5 }), log });
    try {
      const ws = await Promise.all(Array.from({ length: 10 }, (_, i) => upgrade(coordinator.url, { token: `guess-${i}` })));
      const http = await Promise.all(Array.from({ length: 10 }, (_, i) => httpStatus(coordinator.port, '/status', { token: `guess-${i}` })));
      const statuses = [...ws.map((r) => r.status), ...http];
      expect(statuses.filter((s) => s === 401)).toHaveLength(5);
      expect(statuses.filter((s) => s === 429)).toHaveLength(15);
      expect(await upgrade(coordinator.url, { token: 'one-more-guess' })).toMatchObject({ status: 429 });
      expect(await joinRun(coordinator.url, TOKEN)).toBe('welcome');
      expect(await httpStatus(coordinator.port, '/status', { token: TOKEN })).toBe(200);
      // Past the budget, one line says so instead of a line per guess.
      expect(lines.filter((l) => l.code === 'UNAUTHORIZED')).toHaveLength(6);
      expect(lines.filter((l) => l.scope === 'address')).toHaveLength(1);
    } finally {
      await coordinator.close();
    }
  });

  it('25 addresses × 5 guesses: past the total budget every wrong token gets 429; the right one still joins', async () => {
    const { log, lines } = memoryLogger('info');
    const coordinator = await startCoordinator({
      settings,
      server: loopback({ exitWhenDone: false, token: TOKEN, maxAuthFailuresPerMinute: 5, maxAuthFailuresPerMinuteTotal: 100 }),
      log,
    });
    try {
      // Linux routes all of 127.0.0.0/8 to the loopback interface: each attacker its own source address.
      const statuses = (
        await Promise.all(
          Array.from({ length: 25 }, async (_, a) => {
            const localAddress = `127.0.0.${a + 2}`;
            const got: number[] = [];
            for (let g = 0; g < 5; g++) got.push((await upgrade(coordinator.url, { token: `guess-${a}-${g}`, localAddress })).status);
            return got;
          }),
        )
      ).flat();
      expect(statuses.filter((s) => s === 401)).toHaveLength(100);
      expect(statuses.filter((s) => s === 429)).toHaveLength(25);
      expect(await httpStatus(coordinator.port, '/status', { token: 'guess', localAddress: '127.0.0.99' })).toBe(429);
      expect(await joinRun(coordinator.url, TOKEN, '127.0.0.26')).toBe('welcome');
      expect(await httpStatus(coordinator.port, '/status', { token: TOKEN, localAddress: '127.0.0.99' })).toBe(200);
      expect(lines.filter((l) => l.scope === 'all')).toHaveLength(1);
    } finally {
      await coordinator.close();
    }
  });

  it('`ganfleet worker` with a wrong or no token exits non-zero saying so', async () => {
    const coordinator = await startCoordinator({ settings, server: loopback({ exitWhenDone: false, token: TOKEN }), log: memoryLogger('warn').log });
    try {
      for (const [extra, says] of [
        [['--token', 'wrong-token'], /^ganfleet: coordinator: invalid token \(HTTP 401\): check --token or GANFLEET_TOKEN$/m],
        [[], /^ganfleet: coordinator: a token is required \(HTTP 401\)/m],
      ] as const) {
        const { code, stderr } = await run([
          'worker',
          '--connect',
          coordinator.url,
          '--backend',
          'wasm',
          '--data',
          TEST_DATA,
          '--log-level',
          'fatal',
          ...extra,
        ]);
        expect(code).toBe(1);
        expect(stderr).toMatch(says);
      }
    } finally {
      await coordinator.close();
    }
  });
});

describe('local runs are private', () => {
  it('a host that only looks like loopback (127.1) gets a generated token', async () => {
    const coordinator = await startCoordinator({ settings, server: loopback({ host: '127.1', exitWhenDone: false }), log: memoryLogger('warn').log });
    try {
      expect(coordinator.tokenGenerated).toBe(true);
      expect((await upgrade(coordinator.url)).status).toBe(401);
      expect(await joinRun(coordinator.url, coordinator.token as string)).toBe('welcome');
    } finally {
      await coordinator.close();
    }
  });

  it('a token-less loopback coordinator refuses browser origins (403) unless allowed', async () => {
    const { log, lines } = memoryLogger('info');
    const coordinator = await startCoordinator({ settings, server: loopback({ exitWhenDone: false, allowedOrigins: ['https://dash.example'] }), log });
    try {
      expect(coordinator.token).toBeUndefined();
      expect((await upgrade(coordinator.url, { origin: 'https://evil.example' })).status).toBe(403);
      expect((await upgrade(coordinator.url, { origin: `http://127.0.0.1:${coordinator.port}` })).status).toBe(403);
      expect(lines.filter((l) => l.msg === 'connection refused: browser origin not allowed (--allow-origin)')).toHaveLength(2);
      const allowed = await upgrade(coordinator.url, { origin: 'https://dash.example' });
      expect(allowed.status).toBe(101);
      allowed.ws.terminate();
      const noOrigin = await upgrade(coordinator.url);
      expect(noOrigin.status).toBe(101);
      noOrigin.ws.terminate();
    } finally {
      await coordinator.close();
    }
  });

  it('`ganfleet coordinator --allow-origin` takes origins (normalized) and refuses anything else', async () => {
    const bad = spawnSync(process.execPath, ganfleetArgv(['coordinator', '--allow-origin', 'dash.example']), { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/expected an origin/);
    const out = await mkdtemp(join(tmpdir(), 'ganfleet-edge-origin-'));
    const { child, lines } = spawnCli([
      'coordinator',
      ...['--host', '127.0.0.1', '--port', '0', '--model', 'mlp', '--data', TEST_DATA, '--backend', 'wasm', '--steps', '10', '--out', out],
      ...['--allow-origin', 'https://dash.example:443/some/path', '--allow-origin', 'http://localhost:3000'],
    ]);
    try {
      const listening = await waitFor(() => lines.find((l) => l.msg === 'coordinator listening'), 60_000, 'the coordinator to listen');
      const url = `ws://127.0.0.1:${String(listening.port)}`;
      for (const [origin, status] of [
        ['https://dash.example', 101],
        ['http://localhost:3000', 101],
        ['http://localhost:3001', 403],
      ] as const) {
        const got = await upgrade(url, { origin });
        expect(got.status, origin).toBe(status);
        got.ws.terminate();
      }
    } finally {
      child.kill();
      await exited(child);
      await rm(out, { recursive: true, force: true });
    }
  });

  it('`ganfleet train` gives its cluster a token: a stranger on the machine is refused, its own workers train to the end', async () => {
    const out = await mkdtemp(join(tmpdir(), 'ganfleet-edge-train-'));
    try {
      const lines: Record<string, unknown>[] = [];
      const train = run(
        [
          'train',
          ...['--local-workers', '2', '--model', 'mlp', '--data', TEST_DATA, '--backend', 'wasm', '--steps', '20', '--batch-size', '8'],
          ...['--pretrain-steps', '2', '--sample-every', '0', '--eval-every', '0', '--out', out],
        ],
        lines,
      );
      const started = await waitFor(() => lines.find((l) => l.msg === 'local workers started'), 60_000, 'the local cluster to start');
      expect((await upgrade(String(started.url))).status).toBe(401);
      expect((await train).code).toBe(0);
      expect(lines.some((l) => l.msg === 'training finished')).toBe(true);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
