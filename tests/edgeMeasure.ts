/**
 * Measures the coordinator's network edge under the attacks of issue 15, for docs/security.md:
 *   npx tsx tests/edgeMeasure.ts joins|workers|amplification [ROOT [PROTOCOL_VERSION]]
 * ROOT is a built checkout (default: this one), so an older release can be measured the same way
 * (`git archive <rev> | tar -x -C /tmp/old`, node_modules linked, `npx tsc -b packages/cli`); its
 * protocol version, if not this checkout's, follows it (2 for the release of 2026-11-29, 2717a17).
 * The coordinator (`mlp`, --max-connections 64) runs as its own process; attacker and prober here.
 * Clients send the token both ways (upgrade header and hello), so releases of either kind accept them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { pack, unpack } from 'msgpackr';
import WebSocket from 'ws';
import { PROTOCOL_VERSION } from '@ganfleet/shared/wire';

const ROOT = process.argv[3] ?? fileURLToPath(new URL('..', import.meta.url));
const BIN = `${ROOT}/packages/cli/bin/ganfleet.js`;
const DATA = `${ROOT}/tests/fixtures/mnist-small`;
const VERSION = Number(process.argv[4] ?? PROTOCOL_VERSION);
const TOKEN = 'edge-measure-token-0123456789abcdef';
const HEADERS = { authorization: `Bearer ${TOKEN}` };

interface Coordinator {
  child: ChildProcess;
  port: number;
  lines: Record<string, unknown>[];
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function startCoordinator(): Promise<Coordinator> {
  const out = mkdtempSync(join(tmpdir(), 'ganfleet-edge-measure-'));
  const args = ['coordinator', '--host', '127.0.0.1', '--port', '0', '--model', 'mlp', '--data', DATA, '--token', TOKEN, '--steps', '100000', '--out', out];
  const child = spawn(process.execPath, [BIN, ...args, '--batch-size', '8', '--backend', 'wasm', '--sample-every', '0', '--checkpoint-every', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: Record<string, unknown>[] = [];
  return new Promise((resolve) => {
    if (!child.stdout) throw new Error('no stdout');
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      const entry = JSON.parse(line) as Record<string, unknown>;
      lines.push(entry);
      if (entry.msg === 'coordinator listening') resolve({ child, port: Number(entry.port), lines });
    });
  });
}

function spawnWorker(port: number): ChildProcess {
  const args = ['worker', '--connect', `ws://127.0.0.1:${port}`, '--backend', 'wasm', '--log-level', 'warn', '--data', DATA, '--token', TOKEN];
  return spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
}

async function stop(c: Coordinator, workers: ChildProcess[] = []): Promise<void> {
  for (const w of [...workers, c.child]) w.kill('SIGKILL');
  await sleep(500);
}

/** A persistent attacker: `n` token-less sockets, each reopened 50 ms after it was refused or closed. */
function flood(port: number, n: number): { stop(): void; outcomes: Record<string, number> } {
  let stopped = false;
  const outcomes: Record<string, number> = {};
  const sockets = new Set<WebSocket>();
  const count = (what: string): void => void (outcomes[what] = (outcomes[what] ?? 0) + 1);
  const open = (): void => {
    if (stopped) return;
    const ws = new WebSocket(`ws://127.0.0.1:${port}`);
    sockets.add(ws);
    ws.on('open', () => count('open'));
    ws.on('unexpected-response', (_req, res) => {
      count(String(res.statusCode));
      ws.terminate();
    });
    ws.on('error', () => undefined);
    ws.on('close', () => {
      sockets.delete(ws);
      setTimeout(open, 50);
    });
  };
  for (let i = 0; i < n; i++) open();
  return {
    outcomes,
    stop: () => {
      stopped = true;
      for (const ws of sockets) ws.terminate();
    },
  };
}

/** One join: upgrade, hello, the coordinator's first answer ('welcome', or the HTTP status it refused with). */
function joinOnce(port: number): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, { headers: HEADERS });
    const done = (outcome: string): void => {
      resolve(outcome);
      ws.terminate();
    };
    ws.on('open', () =>
      ws.send(
        pack({
          type: 'hello',
          version: VERSION,
          ...(VERSION >= 4 ? { role: 'worker' } : {}),
          backend: 'x',
          device: 'edge-measure',
          capabilities: { wireDtypes: ['float32'] },
          token: TOKEN,
        }),
      ),
    );
    ws.on('message', (data: Buffer) => done((unpack(data) as { type: string }).type));
    ws.on('unexpected-response', (_req, res) => done(`HTTP ${res.statusCode}`));
    ws.on('error', () => undefined);
  });
}

/** Tries to join every 250 ms (a worker's first backoff) until welcomed or `limitMs` passed. */
async function joinUntilWelcome(port: number, limitMs: number): Promise<{ ms: number | null; attempts: number; last: string }> {
  const started = Date.now();
  let attempts = 0;
  let last = '';
  while (Date.now() - started < limitMs) {
    attempts += 1;
    last = await joinOnce(port);
    if (last === 'welcome') return { ms: Date.now() - started, attempts, last };
    await sleep(250);
  }
  return { ms: null, attempts, last };
}

/** An in-process honest client joining 5 times, without and under 100 flooding token-less sockets. */
async function joins(): Promise<void> {
  for (const attack of [false, true]) {
    const c = await startCoordinator();
    const f = attack ? flood(c.port, 100) : undefined;
    if (f) await sleep(2000);
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await joinUntilWelcome(c.port, 30_000));
    console.log(JSON.stringify({ scenario: 'joins', attack, results, attacker: f?.outcomes }));
    f?.stop();
    await stop(c);
  }
}

/** Two worker processes started without and under the flood: time until both joined. */
async function workers(): Promise<void> {
  for (const attack of [false, true]) {
    const c = await startCoordinator();
    const f = attack ? flood(c.port, 100) : undefined;
    if (f) await sleep(1000);
    const started = Date.now();
    const children = [spawnWorker(c.port), spawnWorker(c.port)];
    let joinedMs: number | null = null;
    while (joinedMs === null && Date.now() - started < 60_000) {
      if (c.lines.filter((l) => l.msg === 'worker joined').length >= 2) joinedMs = Date.now() - started;
      await sleep(20);
    }
    const limitRefusals = c.lines.filter((l) => l.msg === 'connection limit reached').length;
    console.log(JSON.stringify({ scenario: 'workers', attack, bothJoinedMs: joinedMs, limitRefusals, attacker: f?.outcomes }));
    f?.stop();
    await stop(c, children);
  }
}

/** A msgpack array of 3 M empty maps: 3 MB on the wire, hundreds of MB decoded. */
function emptyMaps(): Buffer {
  const n = 3_000_000;
  const b = Buffer.alloc(5 + n, 0x80);
  b[0] = 0xdd;
  b.writeUInt32BE(n, 1);
  return b;
}

/** Peak resident set of a process so far (bytes). */
function peakRss(pid: number): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
}

/** /status polled every 20 ms for `ms`: its latencies (ms). */
async function statusLatencies(port: number, ms: number): Promise<number[]> {
  const out: number[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const t = performance.now();
    await (await fetch(`http://127.0.0.1:${port}/status`, { headers: HEADERS })).text();
    out.push(performance.now() - t);
    await sleep(20);
  }
  return out.sort((a, b) => a - b);
}

/** Four 3 MB frames of empty maps, sent without the token and with it before hello, while one worker trains. */
async function amplification(): Promise<void> {
  const frame = emptyMaps();
  for (const mode of ['none', 'tokenless', 'token-before-hello'] as const) {
    const c = await startCoordinator();
    const worker = spawnWorker(c.port);
    while (!c.lines.some((l) => l.msg === 'worker joined')) await sleep(50);
    await sleep(500);
    const pid = c.child.pid ?? 0;
    const rss0 = peakRss(pid);
    const outcomes: string[] = [];
    const probe = statusLatencies(c.port, 4000);
    for (let i = 0; mode !== 'none' && i < 4; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${c.port}`, mode === 'tokenless' ? {} : { headers: HEADERS });
      ws.on('open', () => ws.send(frame));
      ws.on('unexpected-response', (_req, res) => {
        outcomes.push(`HTTP ${res.statusCode}`);
        ws.terminate();
      });
      ws.on('close', (code) => outcomes.push(`close ${code}`));
      ws.on('error', () => undefined);
    }
    const lat = await probe;
    const at = (q: number): number => Math.round((lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] ?? NaN) * 10) / 10;
    const rssGrowthMB = Math.round((peakRss(pid) - rss0) / 1e5) / 10;
    console.log(JSON.stringify({ scenario: 'amplification', mode, statusMs: { n: lat.length, p50: at(0.5), max: at(1) }, rssGrowthMB, outcomes }));
    await stop(c, [worker]);
  }
}

const scenarios: Record<string, () => Promise<void>> = { joins, workers, amplification };
const chosen = scenarios[process.argv[2] ?? ''];
if (!chosen) throw new Error(`usage: tsx tests/edgeMeasure.ts ${Object.keys(scenarios).join('|')} [ROOT]`);
await chosen();
process.exit(0);
