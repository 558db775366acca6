import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import * as native from '../index.js';

const indexUrl = new URL('../index.js', import.meta.url).href;

function withFile(bytes, run) {
  const dir = mkdtempSync(join(tmpdir(), 'ganfleet-shared-'));
  const path = join(dir, 'region');
  writeFileSync(path, new Uint8Array(bytes));
  try {
    run(path, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('mapShared: two mappings, and another process, see each other’s writes; the file holds them', () => {
  withFile(8192, (path) => {
    const a = new Uint8Array(native.mapShared(path, 8192));
    const b = new Uint8Array(native.mapShared(path, 4096));
    assert.equal(a.byteLength, 8192);
    assert.equal(b.byteLength, 4096);
    a[100] = 7;
    b[4095] = 9;
    assert.equal(b[100], 7);
    assert.equal(a[4095], 9);
    const child = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const n = await import(${JSON.stringify(indexUrl)}); const m = new Uint8Array(n.mapShared(${JSON.stringify(path)}, 8192)); process.stdout.write(String(m[100])); m[8191] = 42;`,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    assert.equal(child.status, 0, child.stderr);
    assert.equal(child.stdout, '7');
    assert.equal(a[8191], 42);
    assert.equal(readFileSync(path)[4095], 9);
  });
});

test('mapShared refuses a missing file, a short one, a symbolic link and bad arguments', () => {
  withFile(1000, (path, dir) => {
    assert.throws(() => native.mapShared(join(dir, 'absent'), 10), /cannot open .*absent/);
    assert.throws(() => native.mapShared(path, 1001), { name: 'RangeError', message: /at least 1001 bytes/ });
    symlinkSync(path, join(dir, 'link'));
    assert.throws(() => native.mapShared(join(dir, 'link'), 10), /cannot open .*link/);
    assert.throws(() => native.mapShared(dir, 10), /cannot open|regular file/);
    assert.throws(() => native.mapShared(path, 0), RangeError);
    assert.throws(() => native.mapShared('', 10), TypeError);
  });
});

test('doorbells: a ring in another process wakes a waiter here, and a watch here calls back', async () => {
  await withFileAsync(4096, async (path) => {
    const memory = native.mapShared(path, 4096);
    const words = new Uint32Array(memory);
    assert.equal(native.waitRing(memory, 8, 0, 0), 0, 'nothing rang: the value as it is, at once');
    assert.equal(native.ring(memory, 8), 1);
    assert.equal(words[2], 1);
    assert.equal(native.waitRing(memory, 8, 0, 5000), 1, 'a value other than the one seen returns at once');
    const started = Date.now();
    assert.equal(native.waitRing(memory, 8, 1, 50), 1, 'no ring: back after the timeout');
    assert.ok(Date.now() - started >= 40);

    // The watch does not hold the event loop open; the test's timer does.
    const keepAlive = setTimeout(() => {}, 30_000);
    let calls = 0;
    let wake;
    const called = new Promise((resolve) => (wake = resolve));
    const stop = native.watchRing(memory, 16, () => {
      calls += 1;
      wake();
    });
    // Another process writes a value beside the counter, then rings; the waiting thread reports it here.
    const child = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const n = await import(${JSON.stringify(indexUrl)}); const m = n.mapShared(${JSON.stringify(path)}, 4096); new Uint32Array(m)[5] = 77; n.ring(m, 16); n.ring(m, 16);`,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    assert.equal(child.status, 0, child.stderr);
    await called;
    assert.equal(words[5], 77, 'what was written before the ring is seen');
    assert.equal(words[4], 2);
    stop();
    stop();
    native.ring(memory, 16);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(calls >= 1 && calls <= 2, `${calls} calls for two rings and none after stop()`);
    const after = calls;
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(calls, after);
    clearTimeout(keepAlive);
  });
});

test('doorbells refuse a counter outside the buffer, a misaligned one, and what is not a mapping', () => {
  withFile(64, (path) => {
    const memory = native.mapShared(path, 64);
    assert.throws(() => native.ring(memory, 61), RangeError);
    assert.throws(() => native.ring(memory, 62), RangeError);
    assert.throws(() => native.ring(memory, 6), /multiple of 4/);
    assert.throws(() => native.ring(new Uint8Array(8), 0), TypeError);
    assert.throws(() => native.waitRing(memory, 0, -1, 10), RangeError);
    assert.throws(() => native.waitRing(memory, 0, 0, 60_001), RangeError);
    assert.throws(() => native.watchRing(memory, 0, 'not a function'), TypeError);
  });
});

async function withFileAsync(bytes, run) {
  const dir = mkdtempSync(join(tmpdir(), 'ganfleet-shared-'));
  const path = join(dir, 'region');
  writeFileSync(path, new Uint8Array(bytes));
  try {
    await run(path, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
