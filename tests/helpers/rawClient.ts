import WebSocket from 'ws';
import { expect } from 'vitest';
import { type CoordinatorToWorker, PROTOCOL_VERSION, type Round, encodeMessage, parseCoordinatorMessage } from '@ganfleet/shared/wire';

/** A hand-driven client: the test decides every frame it sends. */
export class RawClient {
  readonly ws: WebSocket;
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly inbox: CoordinatorToWorker[] = [];
  private waiter: (() => void) | undefined;

  constructor(url: string) {
    this.ws = new WebSocket(url, { maxPayload: 0 });
    this.ws.on('message', (data, isBinary) => this.deliver(parseCoordinatorMessage(data, isBinary)));
    this.closed = new Promise((resolve) => this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }

  /** Puts a message in the inbox, for next(). */
  protected deliver(msg: CoordinatorToWorker): void {
    this.inbox.push(msg);
    this.waiter?.();
  }

  async next(): Promise<CoordinatorToWorker> {
    while (this.inbox.length === 0) await new Promise<void>((resolve) => (this.waiter = resolve));
    return this.inbox.shift() as CoordinatorToWorker;
  }

  /** Joins and returns the first round it is asked to compute. */
  async join(): Promise<Round> {
    await this.opened();
    this.ws.send(
      encodeMessage({ type: 'hello', version: PROTOCOL_VERSION, role: 'worker', backend: 'fake', device: 'test', capabilities: { wireDtypes: ['float32'] } }),
    );
    expect((await this.next()).type).toBe('welcome');
    const round = await this.next();
    if (round.type !== 'round') throw new Error(`expected a round, got ${round.type}`);
    return round;
  }
}
