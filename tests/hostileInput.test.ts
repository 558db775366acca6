import { pack } from 'msgpackr';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Message, PROTOCOL_VERSION, type Round, encodeMessage, encodeTensors } from '@ganfleet/shared/wire';
import { selectBackend } from '@ganfleet/shared/backends';
import { getPreset, specsOf } from '@ganfleet/shared/model';
import { type CoordinatorHandle, startCoordinator } from '@ganfleet/coordinator';
import { sameBytes } from './helpers/bytes.js';
import { RawClient } from './helpers/rawClient.js';
import { filledGradients } from './helpers/scriptedWorker.js';
import { exited, loopback, memoryLogger, spawnWorker, testRun } from './helpers/cluster.js';

function gradientsFor(round: Round, edit?: (values: Float32Array, i: number) => void) {
  return filledGradients('mlp', round, 0.01, edit);
}

describe('hostile input to the coordinator', () => {
  let coordinator: CoordinatorHandle;
  let snapshot: Map<string, Float32Array>;
  const { log, lines } = memoryLogger('info');

  beforeAll(async () => {
    await selectBackend('wasm');
    coordinator = await startCoordinator({
      settings: testRun({ seed: 4, batchSize: 8, steps: 2 }),
      server: loopback({ exitWhenDone: false, handshakeTimeoutS: 2 }),
      log,
    });
    snapshot = new Map([...coordinator.run.store.params].map(([k, v]) => [k, v.slice()]));
  });

  afterAll(async () => {
    await coordinator.close();
    await selectBackend('cpu');
  });

  const unchanged = () => {
    expect(coordinator.run.store.version).toBe(0);
    for (const [name, values] of snapshot) expect(sameBytes(coordinator.run.store.params.get(name), values), name).toBe(true);
  };

  const loggedCode = (code: string) =>
    expect(
      lines.some((l) => l.code === code && l.level === 40),
      `a warn line with code ${code}`,
    ).toBe(true);

  const beforeJoin: [string, (ws: WebSocket) => void, number, string][] = [
    ['garbage bytes', (ws) => ws.send(Buffer.from([0xc1, 0xff, 0x00, 0x13])), 1002, 'BAD_FRAME'],
    ['a text frame', (ws) => ws.send('{"type":"hello"}'), 1002, 'BAD_FRAME'],
    ['an unknown message type', (ws) => ws.send(pack({ type: 'launchMissiles' })), 1002, 'UNKNOWN_TYPE'],
    [
      'valid msgpack with wrong field types',
      (ws) => ws.send(pack({ type: 'hello', version: PROTOCOL_VERSION, role: 'worker', backend: 7, device: [], capabilities: {} })),
      1002,
      'BAD_MESSAGE',
    ],
    [
      'another protocol version',
      (ws) => ws.send(pack({ type: 'hello', version: 99, backend: 'x', device: 'y', capabilities: { wireDtypes: ['float32'] } })),
      1008,
      'VERSION_MISMATCH',
    ],
  ];
  for (const [what, send, closeCode, code] of beforeJoin) {
    it(`closes on ${what} with ${closeCode} ${code}`, async () => {
      const client = new RawClient(coordinator.url);
      await client.opened();
      send(client.ws);
      const closed = await client.closed;
      expect(closed.code).toBe(closeCode);
      expect(closed.reason.startsWith(code)).toBe(true);
      loggedCode(code);
      unchanged();
    });
  }

  it('closes a silent connection after the handshake timeout', async () => {
    const client = new RawClient(coordinator.url);
    await client.opened();
    const closed = await client.closed;
    expect(closed.reason).toMatch(/^TIMEOUT/);
    unchanged();
  });

  const badReplies: [string, (r: Round) => unknown, number, string][] = [
    [
      'gradients of the wrong shape',
      (r) => ({ ...gradientsFor(r), grads: encodeTensors([{ name: 'd/dense1/kernel', shape: [2], values: new Float32Array(2) }]) }),
      1002,
      'BAD_TENSOR',
    ],
    ['a NaN gradient', (r) => gradientsFor(r, (v, i) => i === 1 && (v[3] = Number.NaN)), 1008, 'NON_FINITE'],
    ['an Infinity gradient', (r) => gradientsFor(r, (v, i) => i === 0 && (v[0] = Number.POSITIVE_INFINITY)), 1008, 'NON_FINITE'],
    ['a stale round number', (r) => ({ ...gradientsFor(r), round: r.round + 7 }), 1008, 'STALE_REPLY'],
    ['the other phase', (r) => ({ ...gradientsFor(r), phase: r.phase === 'D' ? 'G' : 'D' }), 1008, 'STALE_REPLY'],
    [
      'a second hello',
      () => ({ type: 'hello', version: PROTOCOL_VERSION, role: 'worker', backend: 'x', device: 'y', capabilities: { wireDtypes: ['float32'] } }),
      1002,
      'BAD_MESSAGE',
    ],
  ];
  for (const [what, reply, closeCode, code] of badReplies) {
    it(`a joined worker sending ${what} is closed with ${closeCode} ${code}; no round is applied`, async () => {
      const client = new RawClient(coordinator.url);
      const round = await client.join();
      client.ws.send(encodeMessage(reply(round) as Message));
      const closed = await client.closed;
      expect(closed.code).toBe(closeCode);
      expect(closed.reason.startsWith(code)).toBe(true);
      loggedCode(code);
      unchanged();
    });
  }

  it('refuses a frame larger than the model allows (1009) without reading it', async () => {
    const client = new RawClient(coordinator.url);
    await client.join();
    client.ws.send(new Uint8Array(coordinator.maxPayload + 1));
    expect((await client.closed).code).toBe(1009);
    unchanged();
  });

  it('keeps training with an honest worker afterwards', async () => {
    const worker = spawnWorker(coordinator.url);
    try {
      await expect.poll(() => coordinator.run.done, { timeout: 60_000, interval: 200 }).toBe(true);
      expect(coordinator.run.round).toBe(6);
      for (const values of coordinator.run.store.params.values()) expect(values.every(Number.isFinite)).toBe(true);
    } finally {
      worker.kill();
      await exited(worker);
    }
  });
});

/** One message as two frames, so that the coordinator joins it (as it does large messages, see sendFragmented). */
function sendInTwoFrames(ws: WebSocket, bytes: Uint8Array): void {
  const half = bytes.byteLength >> 1;
  ws.send(bytes.subarray(0, half), { fin: false });
  ws.send(bytes.subarray(half), { fin: true });
}

describe('a worker that sends again right after its reply', () => {
  // Replies are joined into a buffer the connection reuses (FrameJoiner): the second message must not land in the first's.
  let coordinator: CoordinatorHandle;
  const { log } = memoryLogger('info');

  beforeAll(async () => {
    await selectBackend('wasm');
    coordinator = await startCoordinator({
      settings: testRun({ seed: 5, batchSize: 8, steps: 2, minWorkers: 2 }),
      server: loopback({ exitWhenDone: false }),
      log,
    });
  });

  afterAll(async () => {
    await coordinator.close();
    await selectBackend('cpu');
  });

  it('is closed with STALE_REPLY, and the round uses its first reply as it was', async () => {
    const before = new Map([...coordinator.run.store.params].map(([k, v]) => [k, v.slice()]));
    const [hostile, honest] = [new RawClient(coordinator.url), new RawClient(coordinator.url)];
    const [round, other] = await Promise.all([hostile.join(), honest.join()]);
    expect(other.round).toBe(round.round);
    // Both in two frames: +0.01 everywhere, then -0.01 everywhere for the same round.
    sendInTwoFrames(hostile.ws, encodeMessage(gradientsFor(round) as Message));
    sendInTwoFrames(hostile.ws, encodeMessage(filledGradients('mlp', round, -0.01) as Message));
    const closed = await hostile.closed;
    expect(closed.reason.startsWith('STALE_REPLY')).toBe(true);
    sendInTwoFrames(honest.ws, encodeMessage(gradientsFor(round) as Message));
    await expect.poll(() => coordinator.run.store.version, { timeout: 20_000 }).toBeGreaterThan(0);
    // The mean gradient is +0.01 everywhere: Adam's first step moves every trainable value by -lr
    // (m/sqrt(v) = 1). Had the second message overwritten the first, the mean would be 0 and nothing would move.
    const lr = coordinator.run.settings.adam.learningRate;
    for (const spec of specsOf(getPreset('mlp'), round.phase)) {
      const now = coordinator.run.store.params.get(spec.name) as Float32Array;
      const was = before.get(spec.name) as Float32Array;
      let [lowest, highest] = [Infinity, -Infinity];
      now.forEach((v, i) => {
        const step = (v - (was[i] as number)) / lr;
        [lowest, highest] = [Math.min(lowest, step), Math.max(highest, step)];
      });
      expect(highest, spec.name).toBeLessThan(-0.99);
      expect(lowest, spec.name).toBeGreaterThan(-1.01);
    }
    honest.ws.close();
  });
});
