import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CoordinatorToWorker,
  type Message,
  PROTOCOL_VERSION,
  type Round,
  type Welcome,
  encodeMessage,
  parseCoordinatorMessage,
} from '@ganfleet/shared/wire';
import { type SharedMemoryCalls, loadSharedMemory, selectBackend } from '@ganfleet/shared/backends';
import { SharedRegion } from '@ganfleet/shared/link';
import { type CoordinatorHandle, startCoordinator } from '@ganfleet/coordinator';
import { sameBytes } from './helpers/bytes.js';
import { RawClient } from './helpers/rawClient.js';
import { filledGradients } from './helpers/scriptedWorker.js';
import { loopback, memoryLogger, testRun } from './helpers/cluster.js';

/**
 * A worker on the coordinator's machine that the test drives by hand: it offers to map shared
 * memory in its hello, and reads what is rung through the region itself.
 */
class SharedClient extends RawClient {
  region: SharedRegion | undefined;
  /** Messages that came through the region (rung), not the socket. */
  private readonly rung = new WeakSet<CoordinatorToWorker>();
  private stopWatch: (() => void) | undefined;

  constructor(
    url: string,
    private readonly calls: SharedMemoryCalls,
  ) {
    super(url);
    this.ws.on('error', () => undefined);
    void this.closed.then(() => this.stopWatch?.());
  }

  /** Hello (with the capability, or without), the welcome, and the region it offers mapped. */
  async joinOffered(sharedMemory = true): Promise<Welcome> {
    await this.opened();
    const capabilities = { wireDtypes: ['float32' as const], ...(sharedMemory ? { sharedMemory: true } : {}) };
    this.send({ type: 'hello', version: PROTOCOL_VERSION, role: 'worker', backend: 'fake', device: 'test', capabilities });
    const welcome = await this.next();
    if (welcome.type !== 'welcome') throw new Error(`expected a welcome, got ${welcome.type}`);
    if (welcome.shared) {
      const region = SharedRegion.open(this.calls, welcome.shared.path, welcome.shared.bytes);
      this.region = region;
      this.stopWatch = region.watch('down', () => {
        const msg = parseCoordinatorMessage(region.announced('down'));
        this.rung.add(msg);
        this.deliver(msg);
      });
    }
    return welcome;
  }

  send(msg: Message): void {
    this.ws.send(encodeMessage(msg));
  }

  /** The next round, and whether it came through the region. */
  async round(): Promise<{ round: Round; shared: boolean }> {
    const round = await this.next();
    if (round.type !== 'round') throw new Error(`expected a round, got ${round.type}`);
    return { round, shared: this.rung.has(round) };
  }

  /** Writes `msg` into the region's worker half and rings (announcing `claim` bytes, default the frame's). */
  sendShared(msg: Message, claim?: number): void {
    const frame = encodeMessage(msg);
    const region = this.region as SharedRegion;
    region.up.set(frame);
    region.announce('up', claim ?? frame.byteLength);
  }
}

describe('round frames through shared memory with a worker on the coordinator’s machine', () => {
  let coordinator: CoordinatorHandle;
  let calls: SharedMemoryCalls;
  const { log, lines } = memoryLogger('info');

  beforeAll(async () => {
    await selectBackend('wasm');
    const loaded = await loadSharedMemory();
    if (!('calls' in loaded)) throw new Error(`the native addon is needed here: ${loaded.why}`);
    calls = loaded.calls;
    coordinator = await startCoordinator({ settings: testRun({ seed: 4, batchSize: 8, steps: 40 }), server: loopback({ exitWhenDone: false }), log });
  });

  afterAll(async () => {
    await coordinator.close();
    await selectBackend('cpu');
  });

  const snapshot = () => ({ version: coordinator.run.store.version, params: new Map([...coordinator.run.store.params].map(([k, v]) => [k, v.slice()])) });
  const unchanged = (before: ReturnType<typeof snapshot>) => {
    expect(coordinator.run.store.version).toBe(before.version);
    for (const [name, values] of before.params) expect(sameBytes(coordinator.run.store.params.get(name), values), name).toBe(true);
  };

  /** A client that took the offer: its first round (over the socket: the offer was not yet taken) answered, the second come through the region. */
  async function sharing(): Promise<{ client: SharedClient; round: Round }> {
    const client = new SharedClient(coordinator.url, calls);
    const welcome = await client.joinOffered();
    expect(welcome.shared?.path).toMatch(/^\/dev\/shm\/ganfleet-[0-9a-f]{32}$/);
    client.send({ type: 'sharedAnswer', nonce: (client.region as SharedRegion).nonce() });
    const first = await client.round();
    client.send(filledGradients('mlp', first.round, 0.01));
    const second = await client.round();
    expect(second.shared).toBe(true);
    // The name is gone once the worker answered (before its first reply); the memory stays mapped on both sides.
    expect(existsSync(welcome.shared?.path as string)).toBe(false);
    return { client, round: second.round };
  }

  it('an honest exchange: the round comes through the region, the reply goes back through it and is applied; /status says so', async () => {
    const { client, round } = await sharing();
    const version = coordinator.run.store.version;
    expect(coordinator.status().workers.map((w) => w.transport)).toEqual(['shared memory']);
    client.sendShared(filledGradients('mlp', round, 0.01));
    await expect.poll(() => coordinator.run.store.version, { timeout: 20_000 }).toBeGreaterThan(version);
    await expect.poll(() => coordinator.status().lastRound?.viaSharedMemory, { timeout: 5000 }).toBe(1);
    client.ws.close();
    await client.closed;
  });

  const hostile: [string, (client: SharedClient, round: Round) => void, number, string][] = [
    [
      'a ring for more bytes than the region holds',
      (c, r) => c.sendShared(filledGradients('mlp', r, 0.01), (c.region as SharedRegion).bytes + 1),
      1002,
      'BAD_FRAME',
    ],
    ['a ring for a fraction of a byte', (c, r) => c.sendShared(filledGradients('mlp', r, 0.01), 100.5), 1002, 'BAD_FRAME'],
    ['NaN gradients through the region', (c, r) => c.sendShared(filledGradients('mlp', r, 0.01, (v) => (v[0] = Number.NaN))), 1008, 'NON_FINITE'],
    ['a frame in the region that is not a reply', (c) => c.sendShared({ type: 'sharedAnswer', declined: 'in the region' }), 1002, 'BAD_MESSAGE'],
    ['a second answer', (c) => c.send({ type: 'sharedAnswer', nonce: (c.region as SharedRegion).nonce() }), 1002, 'BAD_MESSAGE'],
  ];
  for (const [what, send, closeCode, code] of hostile) {
    it(`a worker sending ${what} is closed with ${closeCode} ${code}; the run's state is untouched`, async () => {
      const { client, round } = await sharing();
      const before = snapshot();
      send(client, round);
      const closed = await client.closed;
      expect(closed.code).toBe(closeCode);
      expect(closed.reason.startsWith(code)).toBe(true);
      unchanged(before);
    });
  }

  it('a wrong nonce: the offer lapses, rounds stay on the socket, and a ring changes nothing', async () => {
    const client = new SharedClient(coordinator.url, calls);
    const welcome = await client.joinOffered();
    client.send({ type: 'sharedAnswer', nonce: new Uint8Array(16) });
    const first = await client.round();
    client.send(filledGradients('mlp', first.round, 0.01));
    const second = await client.round();
    expect(second.shared).toBe(false);
    await expect.poll(() => existsSync(welcome.shared?.path as string), { timeout: 5000 }).toBe(false);
    expect(lines.some((l) => String(l.msg).startsWith('shared memory declined'))).toBe(true);
    const before = snapshot();
    client.sendShared(filledGradients('mlp', second.round, 0.01));
    await new Promise((resolve) => setTimeout(resolve, 200));
    unchanged(before);
    // Still a member: the same reply over the socket is applied.
    client.send(filledGradients('mlp', second.round, 0.01));
    await expect.poll(() => coordinator.run.store.version, { timeout: 20_000 }).toBeGreaterThan(before.version);
    client.ws.close();
    await client.closed;
  });

  it('no offer without the capability; an answer (BAD_MESSAGE), or protocol 5’s notice (UNKNOWN_TYPE), from such a worker is refused', async () => {
    for (const [msg, code] of [
      [{ type: 'sharedAnswer', declined: 'no' }, 'BAD_MESSAGE'],
      [{ type: 'sharedFrame', bytes: 64 } as unknown as Message, 'UNKNOWN_TYPE'],
    ] as const) {
      const client = new SharedClient(coordinator.url, calls);
      const welcome = await client.joinOffered(false);
      expect(welcome.shared).toBeUndefined();
      const before = snapshot();
      client.send(msg);
      const closed = await client.closed;
      expect(closed.reason.startsWith(code)).toBe(true);
      unchanged(before);
    }
  });

  it('a worker that declines, or leaves before answering, leaves no file behind', async () => {
    const declining = new SharedClient(coordinator.url, calls);
    const offered = (await declining.joinOffered()).shared?.path as string;
    expect(existsSync(offered)).toBe(true);
    declining.send({ type: 'sharedAnswer', declined: 'not today' });
    await expect.poll(() => existsSync(offered), { timeout: 5000 }).toBe(false);
    declining.ws.close();
    const leaving = new SharedClient(coordinator.url, calls);
    const path = (await leaving.joinOffered()).shared?.path as string;
    leaving.ws.terminate();
    await leaving.closed;
    await expect.poll(() => existsSync(path), { timeout: 5000 }).toBe(false);
  });
});
