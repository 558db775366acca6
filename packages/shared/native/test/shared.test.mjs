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
