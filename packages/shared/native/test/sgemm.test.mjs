import assert from 'node:assert/strict';
import { test } from 'node:test';

import { acrossPaths, assertClose, native } from '../testlib/harness.mjs';
import { randomArray, refGemm } from '../testlib/reference.mjs';

const SIZES = [1, 2, 3, 7, 17, 33, 64, 100, 257];
const TRANSPOSES = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

// Builds operands for op(A) m x k, op(B) k x n with the given leading
// dimension padding and array offsets; C is pre-filled so beta matters.
function makeCase({ transA, transB, m, n, k, pad = 0, offset = 0, alpha = 1, beta = 0, bias = false, relu = false, seed = 1 }) {
  const lda = Math.max(1, transA ? m : k) + pad;
  const ldb = Math.max(1, transB ? k : n) + pad;
  const ldc = n + pad;
  const a = randomArray(offset + (transA ? k : m) * lda, seed);
  const b = randomArray(offset + (transB ? n : k) * ldb, seed + 1);
  const c0 = randomArray(offset + m * ldc, seed + 2);
  const p = { transA, transB, m, n, k, alpha, a, aOffset: offset, lda, b, bOffset: offset, ldb, beta, cOffset: offset, ldc, relu };
  p.bias = bias ? randomArray(n, seed + 3) : null;
  return { p, c0 };
}

function check({ p, c0 }, label) {
  const want = refGemm({ ...p, c0 });
  acrossPaths(
    label,
    () => {
      const c = c0.slice();
      native.sgemm({ ...p, c, activation: p.relu ? 'relu' : 'none' });
      return c;
    },
    (c, isa) => {
      assertClose(c, want, `${label} [${isa}]`, (i) => p.cOffset + Math.floor(i / p.n) * p.ldc + (i % p.n));
      // Padding cells of C (outside the m x n window) stay untouched.
      for (let i = 0; i < c.length; i++) {
        const r = Math.floor((i - p.cOffset) / p.ldc);
        const col = (i - p.cOffset) % p.ldc;
        if (i < p.cOffset || r >= p.m || col >= p.n) assert.equal(c[i], c0[i], `${label} [${isa}]: wrote outside C at ${i}`);
      }
    },
  );
}

for (const [transA, transB] of TRANSPOSES) {
  test(`sgemm transA=${transA} transB=${transB}: every size combination`, () => {
    for (const m of SIZES)
      for (const n of SIZES)
        for (const k of SIZES) {
          if (m * n * k > 257 * 257 * 64 && !(m === 257 && n === 257 && k === 257)) continue;
          check(makeCase({ transA, transB, m, n, k, seed: m * 7 + n * 13 + k }), `${m}x${n}x${k}`);
        }
  });
}

test('sgemm alpha, beta, offsets and padded leading dimensions', () => {
  for (const [transA, transB] of TRANSPOSES) {
    for (const [m, n, k] of [
      [17, 33, 7],
      [100, 64, 257],
      [3, 257, 100],
    ]) {
      const c = makeCase({ transA, transB, m, n, k, pad: 5, offset: 11, alpha: -0.75, beta: 0.5 });
      check(c, `alpha/beta ${transA}/${transB} ${m}x${n}x${k}`);
    }
  }
});

test('sgemm beta = 0 never reads C', () => {
  const { p, c0 } = makeCase({ transA: false, transB: false, m: 33, n: 17, k: 64 });
  const want = refGemm({ ...p, c0 });
  acrossPaths(
    'beta0',
    () => {
      const c = new Float32Array(c0.length).fill(NaN);
      native.sgemm({ ...p, c });
      return c;
    },
    (c, isa) => assertClose(c, want, `beta0 [${isa}]`),
  );
});

test('sgemm fused bias and ReLU epilogue', () => {
  for (const [transA, transB] of TRANSPOSES) {
    for (const [m, n, k] of [
      [1, 1, 1],
      [7, 33, 300],
      [64, 100, 17],
    ]) {
      check(makeCase({ transA, transB, m, n, k, bias: true, relu: true, beta: 0.25 }), `epilogue ${transA}/${transB} ${m}x${n}x${k}`);
      check(makeCase({ transA, transB, m, n, k, bias: true }), `bias ${transA}/${transB} ${m}x${n}x${k}`);
    }
  }
  const relu = makeCase({ transA: false, transB: false, m: 5, n: 9, k: 4, relu: true });
  const c = new Float32Array(45);
  native.sgemm({ ...relu.p, c, activation: 'relu' });
  assert.ok(c.some((v) => v === 0) && c.every((v) => v >= 0), 'ReLU clamps the negative half');
});

test('sgemm shapes big enough to use several threads', () => {
  const shapes = [
    [257, 300, 129],
    [1000, 33, 40],
    [37, 1000, 300],
    [128, 520, 700],
  ];
  for (const [m, n, k] of shapes)
    for (const [transA, transB] of TRANSPOSES) check(makeCase({ transA, transB, m, n, k, bias: true, beta: 1 }), `${m}x${n}x${k} ${transA}/${transB}`);
});

test('sgemm with k = 0 applies only beta, bias and activation', () => {
  const { p, c0 } = makeCase({ transA: false, transB: false, m: 4, n: 5, k: 0, beta: 2, bias: true, relu: true });
  check({ p, c0 }, 'k0');
});

test('sgemm rejects bad arguments', () => {
  const a = new Float32Array(6);
  const b = new Float32Array(6);
  const c = new Float32Array(4);
  assert.throws(() => native.sgemm({ m: 2, n: 2, k: 4, a, b, c }), RangeError, 'A too short');
  assert.throws(() => native.sgemm({ m: 2, n: 2, k: 3, a, b, c, cOffset: 1 }), RangeError, 'C offset past the end');
  assert.throws(() => native.sgemm({ m: 2, n: 2, k: 3, a: new Float64Array(6), b, c }), TypeError, 'wrong element type');
  assert.throws(() => native.sgemm({ m: 2, n: 2, k: 3, a, b, c, lda: 2 }), RangeError, 'lda below k');
  assert.throws(() => native.sgemm({ m: 2, n: 2, k: 3, a, b, c: a.subarray(0, 4) }), RangeError, 'C aliases A');
  assert.throws(() => native.sgemm({ m: 2, n: 2, k: 3, a, b, c, activation: 'tanh' }), RangeError, 'unknown activation');
  native.sgemm({ m: 2, n: 2, k: 3, a, b, c });
});

test('sgemm honours the byteOffset of views', () => {
  const { p, c0 } = makeCase({ transA: true, transB: false, m: 9, n: 10, k: 11, offset: 3 });
  const want = refGemm({ ...p, c0 });
  const buffer = new ArrayBuffer(4 * (p.a.length + p.b.length + c0.length + 8));
  const view = (src, at) => {
    const v = new Float32Array(buffer, at * 4, src.length);
    v.set(src);
    return v;
  };
  const a = view(p.a, 1);
  const b = view(p.b, 2 + p.a.length);
  const c = view(c0, 3 + p.a.length + p.b.length);
  native.sgemm({ ...p, a, b, c });
  assertClose(c, want, 'views', (i) => p.cOffset + Math.floor(i / p.n) * p.ldc + (i % p.n));
});
