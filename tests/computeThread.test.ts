import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeIndices, encodeMessage, encodeTensors, parseWorkerMessage } from '@ganfleet/shared/wire';
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
  const reports: ThreadReport[] = [];

  beforeAll(async () => {
    const loaded = await loadSharedMemory();
    if (!('calls' in loaded)) throw new Error(`the native addon is needed here: ${loaded.why}`);
    calls = loaded.calls;
    thread = new ComputeThread();
    thread.onReport = (r) => reports.push(r);
    const ready = await thread.init('wasm', { sharedMemory: true, dataDir: TEST_DATA });
    expect(ready.sharedMemory).toEqual({ available: true });
    const preset = getPreset('mlp');
    const params = [...initParams(preset, 1)].map(([name, values]) => ({ name, shape: preset.params.find((s) => s.name === name)?.shape as number[], values }));
    const created = SharedRegion.create(calls, 4 << 20);
    region = created.region;
    const welcome = encodeMessage({
      type: 'welcome',
      workerId: 'w1',
      run: { runId: 'r1', preset: 'mlp', realLabel: 1, dataset: { ...ready.dataset }, wireDtype: 'float32' },
      params: encodeTensors(params),
      round: 0,
      shared: { path: region.path, bytes: region.bytes },
    });
    const started = await thread.start('mlp', new Uint8Array(welcome).buffer);
    region.unlink();
    expect(started.shared?.nonce).toEqual(new Uint8Array(created.nonce));
  }, 60_000);

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

  it('a ring for more than the region holds is not answered: the thread reports BAD_FRAME and stops serving the region', async () => {
    region.announce('down', region.bytes + 1);
    await expect.poll(() => reports.length, { timeout: 10_000 }).toBe(2);
    expect(reports[1]).toMatchObject({ kind: 'sharedFailed', code: 'BAD_FRAME' });
    // No longer served: a valid round rung now gets no answer.
    const frame = encodeMessage({ type: 'round', round: 2, phase: 'D', batchSize: 4, seeds: encodeIndices([9]), indices: encodeIndices([0, 1, 2, 3]) });
    region.down.set(frame);
    region.announce('down', frame.byteLength);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(reports).toHaveLength(2);
  });
});
