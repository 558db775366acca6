import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CoordinatorHandle, startCoordinator } from '@ganfleet/coordinator';
import { exited, loopback, memoryLogger, spawnRelay, spawnWorker, testRun, waitFor } from './helpers/cluster.js';

/** Debian's chromium (`apt-get install -y chromium`), or CHROMIUM_PATH. */
const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p): p is string => Boolean(p && existsSync(p)));
const SCREENSHOT = fileURLToPath(new URL('../docs/dashboard.png', import.meta.url));
const TOKEN = 'dashboard-test-token';

const title = CHROMIUM
  ? 'dashboard in a real browser'
  : 'dashboard in a real browser: SKIPPED, no chromium found (apt-get install -y chromium, or set CHROMIUM_PATH)';
if (!CHROMIUM) console.warn(`tests/dashboard.test.ts: ${title}`);

describe.skipIf(!CHROMIUM)(title, () => {
  let out: string;
  let coordinator: CoordinatorHandle;
  let browser: Browser;

  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'ganfleet-dashboard-'));
    coordinator = await startCoordinator({
      // Long enough to still be training on a fast machine: the test watches the first seconds and stops the run.
      settings: testRun({ seed: 2, batchSize: 16, pretrainSteps: 10, steps: 1000, sampleEvery: 5, out }),
      server: loopback({ exitWhenDone: false, token: TOKEN }),
      log: memoryLogger('warn').log,
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  });
  afterAll(async () => {
    await browser?.close();
    await coordinator?.close();
    await rm(out, { recursive: true, force: true });
  });

  it('draws growing loss curves, refreshes the sample grid and lists the workers and a relay with its tree, all from the coordinator', async () => {
    const base = `http://127.0.0.1:${coordinator.port}`;
    const page = await browser.newPage({ viewport: { width: 1280, height: 660 } });
    const foreign: string[] = [];
    const errors: string[] = [];
    page.on('request', (r) => void (r.url().startsWith(`${base}/`) || r.url().startsWith('data:') || foreign.push(r.url())));
    page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
    page.on('pageerror', (e) => errors.push(e.message));

    // The page is opened with a token and must pass it on to its own requests.
    await page.goto(`${base}/?token=${TOKEN}`);
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'waiting');
    expect(await page.locator('#loss').getAttribute('data-points')).toBe('0');

    const worker = spawnWorker(coordinator.url, ['--token', TOKEN]);
    const below: ChildProcess[] = [];
    try {
      const points = async (): Promise<number> => Number(await page.locator('#loss').getAttribute('data-points'));
      await page.waitForFunction(() => Number(document.getElementById('loss')?.dataset.points) > 0, undefined, { timeout: 60_000 });
      const first = await points();
      await page.waitForFunction((n) => Number(document.getElementById('loss')?.dataset.points) > n + 5, first, { timeout: 60_000 });

      const shownSample = (): Promise<string | null> =>
        page.evaluate(() => {
          const img = document.getElementById('samples') as HTMLImageElement;
          return img.complete && img.naturalWidth > 0 ? img.src : null;
        });
      await page.waitForFunction(() => {
        const img = document.getElementById('samples') as HTMLImageElement;
        return img.complete && img.naturalWidth > 0;
      });
      const firstSample = (await shownSample()) as string;
      expect(firstSample).toMatch(/samples\/latest\.png\?step=\d+&token=/);
      await page.waitForFunction(
        (src) => {
          const img = document.getElementById('samples') as HTMLImageElement;
          return img.src !== src && img.complete && img.naturalWidth > 0;
        },
        firstSample,
        { timeout: 60_000 },
      );
      expect(await shownSample()).not.toBe(firstSample);

      const row = page.locator('#workers tr').first();
      await expect
        .poll(() => row.locator('td').allTextContents(), { timeout: 10_000 })
        // A worker on the coordinator's machine: its frames go through shared memory.
        .toEqual(['w1', 'wasm', expect.any(String), 'shared memory', expect.stringMatching(/ms$/), '', expect.any(String), expect.any(String)]);
      expect(await page.locator('#state').textContent()).toBe('training');

      // A relay with a worker below it: its row shows its own round, its member's row the path to it.
      const relay = spawnRelay(coordinator.url, 0, ['--token', TOKEN]);
      below.push(relay.child);
      const listening = await waitFor(() => relay.lines.find((l) => l.msg === 'relay listening'), 60_000, 'the relay to listen');
      below.push(spawnWorker(`ws://127.0.0.1:${String(listening.port)}`, ['--token', TOKEN]));
      const rows = page.locator('#workers tr');
      await expect
        .poll(async () => (await rows.count()) === 3 && (await rows.nth(1).locator('td').allTextContents()), { timeout: 60_000 })
        .toEqual([
          expect.stringMatching(/^r\d+$/),
          'relay · 1 worker',
          expect.any(String),
          'websocket',
          expect.stringMatching(/ms$/),
          expect.stringMatching(/^\d+\.\d ms · \d+\.\d\d MB out, \d+\.\d\d MB in$/),
          expect.any(String),
          expect.any(String),
        ]);
      const relayId = await rows.nth(1).locator('td').first().textContent();
      expect(await rows.nth(2).locator('td').first().textContent()).toBe(`\u00a0\u00a0└ ${relayId}/w1`);

      if (process.env.UPDATE_SCREENSHOT === '1') {
        await page.waitForFunction(() => Number(document.getElementById('loss')?.dataset.points) > 150, undefined, { timeout: 90_000 });
        await page.screenshot({ path: SCREENSHOT });
      }
      expect(foreign).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      for (const child of [worker, ...below]) if (child.exitCode === null) child.kill();
      await Promise.all([worker, ...below].map(exited));
    }
  });
});
