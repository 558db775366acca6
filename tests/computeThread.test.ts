import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeIndices, encodeMessage, encodeTensors, parseCoordinatorMessage, parseWorkerMessage } from '@ganfleet/shared/wire';
import { type SharedMemoryCalls, loadSharedMemory } from '@ganfleet/shared/backends';
import { SharedRegion } from '@ganfleet/shared/link';
import { getPreset, initParams } from '@ganfleet/shared/model';
// The built thread: under vitest a worker_thread cannot load the TypeScript sources.
import { ComputeThread } from '../packages/worker/dist/computeThread.js';
import type { ThreadReport } from '../packages/worker/dist/computeThreadMessages.js';
import { TEST_DATA } from './helpers/cluster.js';

/** The compute thread on its own, with the test as its parent: a region offered in the welcome, rounds rung into it by hand. */
describe('the compute thread serves the rounds rung in its shared region', () => {
  let calls: SharedMemoryCalls;
  let thread: ComputeThread;
  let region: SharedRegion;
  let dataset: { name: string; count: number; fingerprint: string };
  const reports: ThreadReport[] = [];

  beforeAll(async () => {
    const loaded = await loadSharedMemory();
    if (!('calls' in loaded)) throw new Error(`the native addon is needed here: ${loaded.why}`);
    calls = loaded.calls;
    thread = new ComputeThread();
    thread.onReport = (r) => reports.push(r);
    const ready = await thread.init('wasm', { sharedMemory: true, dataDir: TEST_DATA });
    expect(ready.sharedMemory).toEqual({ available: true });
    dataset = ready.dataset;
    region = await startWithRegion();
  }, 60_000);

  /** Starts a run whose welcome offers a new region; the region, once the thread has mapped it. */
  async function startWithRegion(): Promise<SharedRegion> {
    const preset = getPreset('mlp');
    const params = [...initParams(preset, 1)].map(([name, values]) => ({ name, shape: preset.params.find((s) => s.name === name)?.shape as number[], values }));
    const created = SharedRegion.create(calls, 4 << 20);
    const welcome = encodeMessage({
      type: 'welcome',
      workerId: 'w1',
      run: { runId: 'r1', preset: 'mlp', realLabel: 1, dataset: { ...dataset }, wireDtype: 'float32' },
      params: encodeTensors(params),
      round: 0,
      shared: { path: created.region.path, bytes: created.region.bytes },
    });
    const started = await thread.start('mlp', new Uint8Array(welcome).buffer);
    created.region.unlink();
    expect(started.shared?.nonce).toEqual(new Uint8Array(created.nonce));
    return created.region;
  }

  afterAll(async () => {
    await thread.terminate();
  });

  it('a round rung there is answered there, and reported to the connection thread afterwards', async () => {
    const keepAlive = setTimeout(() => undefined, 30_000);
    const answered = new Promise<void>((resolve) => {
      const stop = region.watch('up', () => {
        stop();
        resolve();
      });
    });
    const frame = encodeMessage({ type: 'round', round: 1, phase: 'D', batchSize: 4, seeds: encodeIndices([9]), indices: encodeIndices([0, 1, 2, 3]) });
    region.down.set(frame);
    region.announce('down', frame.byteLength);
    await answered;
    const reply = parseWorkerMessage(region.announced('up'));
    expect(reply).toMatchObject({ type: 'gradients', round: 1, phase: 'D', samples: 4 });
    await expect.poll(() => reports.length, { timeout: 10_000 }).toBe(1);
    expect(reports[0]).toMatchObject({ kind: 'sharedRound', round: 1, byteLength: region.announced('up').byteLength });
    expect(reports[0]).not.toHaveProperty('frame');
    clearTimeout(keepAlive);
  });

  it('a round rung before its parameters are written waits for each as it is published, and computes with the published values', async () => {
    const keepAlive = setTimeout(() => undefined, 30_000);
    const preset = getPreset('mlp');
    const specs = preset.params.filter((s) => s.name.startsWith('d/'));
    const paramsOf = (seed: number) =>
      encodeTensors(
        [...initParams(preset, seed)]
          .filter(([name]) => name.startsWith('d/'))
          .map(([name, values]) => ({ name, shape: specs.find((s) => s.name === name)?.shape as number[], values })),
      );
    const roundFrame = (round: number, seed: number) =>
      encodeMessage({
        type: 'round',
        round,
        phase: 'D',
        batchSize: 4,
        seeds: encodeIndices([9]),
        indices: encodeIndices([0, 1, 2, 3]),
        update: paramsOf(seed),
      });
    const answer = async (ring: () => void): Promise<Uint8Array> => {
      const answered = new Promise<void>((resolve) => {
        const stop = region.watch('up', () => {
          stop();
          resolve();
        });
      });
      ring();
      await answered;
      return region.announced('up').slice();
    };
    const gradientsOf = (reply: Uint8Array) => {
      const msg = parseWorkerMessage(reply);
      if (msg.type !== 'gradients') throw new Error(`expected gradients, got ${msg.type}`);
      return Buffer.from(msg.grads.data);
    };
    // The round with the parameters of seed 2, written whole: what the answer must be.
    const whole = roundFrame(2, 2);
    const expected = gradientsOf(await answer(() => (region.down.set(whole), region.announce('down', whole.byteLength))));

    // The same round with the region holding seed 3's parameters while only its header is published.
    const stale = roundFrame(3, 3);
    const bodyAt = (parseCoordinatorMessage(stale) as { update: { data: Uint8Array } }).update.data.byteOffset - stale.byteOffset;
    const frame = roundFrame(3, 2);
    expect(frame.byteLength).toBe(stale.byteLength);
    let early = false;
    let answeredEarly: boolean | undefined;
    const reply = await answer(() => {
      region.down.set(stale);
      region.down.set(frame.subarray(0, bodyAt));
      region.announce('down', frame.byteLength, bodyAt);
      const earlyWatch = region.watch('up', () => (early = true));
      // The body in two pieces, each published once written, the first only after a while.
      setTimeout(() => {
        const half = bodyAt + ((frame.byteLength - bodyAt) >> 1);
        region.down.set(frame.subarray(bodyAt, half), bodyAt);
        region.publish('down', half);
        setTimeout(() => {
          earlyWatch();
          answeredEarly = early;
          region.down.set(frame.subarray(half), half);
          region.publish('down', frame.byteLength);
        }, 100);
      }, 200);
    });
    expect(answeredEarly, 'no answer before the whole body was published').toBe(false);
    expect(gradientsOf(reply).equals(expected)).toBe(true);
    expect(gradientsOf(reply).equals(gradientsOf(await answer(() => (region.down.set(stale), region.announce('down', stale.byteLength)))))).toBe(false);
    await expect.poll(() => reports.length, { timeout: 10_000 }).toBe(4);
    expect(reports.every((r) => r.kind === 'sharedRound')).toBe(true);
    clearTimeout(keepAlive);
  });

  it('a ring for more than the region holds is not answered: the thread reports BAD_FRAME and stops serving the region', async () => {
    region.announce('down', region.bytes + 1);
    await expect.poll(() => reports.length, { timeout: 10_000 }).toBe(5);
    expect(reports[4]).toMatchObject({ kind: 'sharedFailed', code: 'BAD_FRAME' });
    // No longer served: a valid round rung now gets no answer.
    const frame = encodeMessage({ type: 'round', round: 2, phase: 'D', batchSize: 4, seeds: encodeIndices([9]), indices: encodeIndices([0, 1, 2, 3]) });
    region.down.set(frame);
    region.announce('down', frame.byteLength);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(reports).toHaveLength(5);
  });

  it('a new run started while a round waits for its parameters: the round gives up unreported, and the new region is served', async () => {
    const keepAlive = setTimeout(() => undefined, 30_000);
    region = await startWithRegion();
    const frame = encodeMessage({ type: 'round', round: 1, phase: 'D', batchSize: 4, seeds: encodeIndices([9]), indices: encodeIndices([0, 1, 2, 3]) });
    const waiting = encodeMessage({
      type: 'round',
      round: 1,
      phase: 'D',
      batchSize: 4,
      seeds: encodeIndices([9]),
      indices: encodeIndices([0, 1, 2, 3]),
      update: encodeTensors([{ name: 'd/dense3/bias', shape: [1], values: new Float32Array([0.5]) }]),
    });
    region.down.set(waiting);
    // Only the header is published: the round waits for its one parameter.
    region.announce('down', waiting.byteLength, 1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const before = reports.length;
    region = await startWithRegion();
    const answered = new Promise<void>((resolve) => {
      const stop = region.watch('up', () => {
        stop();
        resolve();
      });
    });
    region.down.set(frame);
    region.announce('down', frame.byteLength);
    await answered;
    expect(parseWorkerMessage(region.announced('up'))).toMatchObject({ type: 'gradients', round: 1 });
    await expect.poll(() => reports.length, { timeout: 10_000 }).toBe(before + 1);
    expect(reports.slice(before)).toEqual([expect.objectContaining({ kind: 'sharedRound', round: 1 })]);
    clearTimeout(keepAlive);
  }, 30_000);
});
