import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FRAGMENT_ABOVE, FRAGMENT_BYTES, sendFragmented } from './sendFragmented.js';

describe('sendFragmented', () => {
  let server: WebSocketServer;
  let client: WebSocket;
  const received: Uint8Array[][] = [];
  let arrived: () => void = () => undefined;

  beforeAll(async () => {
    server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    server.on('connection', (ws) => {
      ws.binaryType = 'fragments';
      ws.on('message', (data) => {
        received.push(data as unknown as Uint8Array[]);
        arrived();
      });
    });
    client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
    await new Promise((resolve) => client.once('open', resolve));
  });

  afterAll(() => {
    client.close();
    server.close();
  });

  const next = () => new Promise<Uint8Array[]>((resolve) => (arrived = () => resolve(received.shift() as Uint8Array[])));

  it('sends a large message in frames of at most FRAGMENT_BYTES, and calls back once', async () => {
    const head = Uint8Array.from({ length: 37 }, (_, i) => i);
    const body = Uint8Array.from({ length: FRAGMENT_ABOVE + 5 }, (_, i) => (i * 7) & 0xff);
    const message = next();
    let calls = 0;
    const sent = new Promise<void>((resolve) => sendFragmented(client, [head, body], () => (calls += 1) && resolve()));
    const chunks = await message;
    await sent;
    expect(calls).toBe(1);
    // The head alone, then the body in full frames and one of 5 bytes.
    const full = Array.from({ length: FRAGMENT_ABOVE / FRAGMENT_BYTES }, () => FRAGMENT_BYTES);
    expect(chunks.map((c) => c.byteLength)).toEqual([37, ...full, 5]);
    expect(Buffer.concat(chunks).equals(Buffer.concat([head, body]))).toBe(true);
  });

  it('sends a message up to FRAGMENT_ABOVE as a frame per part', async () => {
    const parts = [new Uint8Array(3).fill(1), new Uint8Array(2 * FRAGMENT_BYTES + 1).fill(2)];
    const message = next();
    sendFragmented(client, parts);
    const chunks = await message;
    expect(chunks.map((c) => c.byteLength)).toEqual([3, 2 * FRAGMENT_BYTES + 1]);
    expect(Buffer.concat(chunks).equals(Buffer.concat(parts))).toBe(true);
  });

  it('sends an empty message as one empty frame', async () => {
    const message = next();
    sendFragmented(client, []);
    expect(Buffer.concat(await message).byteLength).toBe(0);
  });
});
