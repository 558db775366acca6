import { type Server, type Socket, connect, createServer } from 'node:net';
import { expect, it } from 'vitest';
import { startCoordinator } from '@ganfleet/coordinator';
import { eventsNamed, exited, loopback, memoryLogger, recordEvents, spawnWorker, testRun, waitFor } from './helpers/cluster.js';

/** A TCP relay to `target` on a fixed port, which the test can cut (every connection, and the port) and open again. */
function relay(target: number): { port: () => number; cut: () => Promise<void>; open: () => Promise<void> } {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const open = (): Promise<void> =>
    new Promise((resolve) => {
      server = createServer((client) => {
        const upstream = connect(target, '127.0.0.1');
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('error', () => undefined);
          s.on('close', () => sockets.delete(s));
        }
        client.pipe(upstream).pipe(client);
      });
      server.listen(port, '127.0.0.1', () => {
        port = (server?.address() as { port: number }).port;
        resolve();
      });
    });
  const cut = (): Promise<void> =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server?.close(() => resolve());
    });
  return { port: () => port, cut, open };
}

it('a worker connected for longer than --give-up-after comes back after the coordinator drops out for a moment', async () => {
  const { log } = memoryLogger('warn');
  const coordinator = await startCoordinator({ settings: { ...testRun({ seed: 3, batchSize: 8, steps: 1_000_000 }), minWorkers: 1 }, server: loopback(), log });
  const seen = recordEvents(coordinator.events);
  const link = relay(coordinator.port);
  await link.open();
  const worker = spawnWorker(`ws://127.0.0.1:${link.port()}`, ['--give-up-after', '1']);
  try {
    const joined = await waitFor(() => eventsNamed(seen, 'workerJoined')[0], 60_000, 'the worker to join');
    // Connected for longer than the give-up time, which counts from the loss, not from the first contact.
    await waitFor(() => Date.now() - joined.at > 1500, 10_000, 'time to pass');
    await link.cut();
    await waitFor(() => eventsNamed(seen, 'workerLeft').length === 1, 10_000, 'the coordinator to see the worker go');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await link.open();
    const rejoined = await waitFor(() => eventsNamed(seen, 'workerJoined')[1], 30_000, 'the worker to come back');
    await waitFor(() => eventsNamed(seen, 'round').some((r) => r.at > rejoined.at), 30_000, 'a round after the rejoin');
    expect(worker.exitCode).toBeNull();
  } finally {
    worker.kill('SIGKILL');
    await exited(worker);
    await coordinator.close();
    await link.cut();
  }
});
