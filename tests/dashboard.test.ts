import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CoordinatorHandle, startCoordinator } from '@ganfleet/coordinator';
import { exited, loopback, memoryLogger, spawnWorker, testRun } from './helpers/cluster.js';

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

  it('draws growing loss curves, refreshes the sample grid and lists the worker, all from the coordinator', async () => {
    const base = `http://127.0.0.1:${coordinator.port}`;
    const page = await browser.newPage({ viewport: { width: 1280, height: 560 } });
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
        .toEqual(['w1', 'wasm', expect.any(String), expect.stringMatching(/ms$/), expect.any(String), expect.any(String)]);
      expect(await page.locator('#state').textContent()).toBe('training');

      if (process.env.UPDATE_SCREENSHOT === '1') {
        await page.waitForFunction(() => Number(document.getElementById('loss')?.dataset.points) > 150, undefined, { timeout: 90_000 });
        await page.screenshot({ path: SCREENSHOT });
      }
      expect(foreign).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      if (worker.exitCode === null) worker.kill();
      await exited(worker);
    }
  });
});
