import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

import * as native from '../index.js';

const indexUrl = new URL('../index.js', import.meta.url).href;

function runNode(code, env = {}) {
  return spawnSync(process.execPath, ['--input-type=module', '-e', code], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });
}

// A GEMM whose result is summarised by one number, to compare threads/workers.
const gemmChecksum = `
  const m = 300, n = 200, k = 150;
  const a = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i));
  const b = Float32Array.from({ length: k * n }, (_, i) => Math.cos(i));
  const c = new Float32Array(m * n);
  native.sgemm({ m, n, k, a, b, c });
  const checksum = c.reduce((s, v, i) => s + v * (i % 7), 0);
`;

test('setIsa / isa / supportedIsas', () => {
  const paths = native.supportedIsas();
  assert.equal(paths[0], 'portable');
  for (const isa of paths) {
    native.setIsa(isa);
    assert.equal(native.isa(), isa);
  }
  assert.throws(() => native.setIsa('sse9'), RangeError);
  for (const isa of ['avx2', 'avx512'].filter((p) => !paths.includes(p))) assert.throws(() => native.setIsa(isa), RangeError);
});

test('GANFLEET_NATIVE_ISA picks the start-up path, clamped to the CPU', () => {
  const paths = native.supportedIsas();
  const best = paths.at(-1);
  const isaWith = (value) => runNode(`import * as n from ${JSON.stringify(indexUrl)}; console.log(n.isa());`, { GANFLEET_NATIVE_ISA: value }).stdout.trim();
  assert.equal(isaWith('portable'), 'portable');
  assert.equal(isaWith('avx2'), paths.includes('avx2') ? 'avx2' : 'portable');
  assert.equal(isaWith('avx512'), best);
  assert.equal(isaWith('nonsense'), best);
});

test('setThreads validates and reports the pool size', () => {
  assert.equal(native.threads(), 1);
  native.setThreads(4);
  assert.equal(native.threads(), 4);
  native.setThreads(1);
  assert.throws(() => native.setThreads(0), RangeError);
  assert.throws(() => native.setThreads(1.5), RangeError);
  assert.throws(() => native.setThreads(1000), RangeError);
});

test('the addon loads and computes in several worker_threads at once', async () => {
  const code = `
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(indexUrl)}).then((native) => {
      native.setThreads(2);
      ${gemmChecksum}
      parentPort.postMessage(checksum);
    });`;
  const results = await Promise.all(
    [0, 1, 2].map(
      () =>
        new Promise((resolve, reject) => {
          const w = new Worker(code, { eval: true });
          let value;
          w.on('message', (v) => (value = v));
          w.on('error', reject);
          w.on('exit', (exitCode) => (exitCode === 0 ? resolve(value) : reject(new Error(`worker exit ${exitCode}`))));
        }),
    ),
  );
  native.setThreads(3);
  const local = new Function('native', `${gemmChecksum}; return checksum;`)(native);
  native.setThreads(1);
  assert.equal(typeof local, 'number');
  for (const r of results) assert.equal(r, local);
});

test('a worker holding a thread pool can be terminated', async () => {
  const code = `
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(indexUrl)}).then((native) => { native.setThreads(3); parentPort.postMessage('ready'); setInterval(() => {}, 1000); });`;
  const w = new Worker(code, { eval: true });
  await new Promise((resolve) => w.once('message', resolve));
  assert.equal(await w.terminate(), 1);
});

test('the process exits promptly with a live thread pool', () => {
  for (const ending of ['', 'process.exit(0);']) {
    const r = runNode(`import * as native from ${JSON.stringify(indexUrl)}; native.setThreads(3); ${gemmChecksum}; console.log(checksum); ${ending}`);
    assert.equal(r.error, undefined, `child did not finish: ${r.error}`);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(Number.isFinite(Number(r.stdout)));
  }
});

test('a missing binary gives a clear error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ganfleet-native-'));
  try {
    copyFileSync(fileURLToPath(indexUrl), join(dir, 'index.js'));
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    await assert.rejects(import(join(dir, 'index.js')), /ganfleet native addon unavailable/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
