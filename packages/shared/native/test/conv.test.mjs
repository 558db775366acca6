import assert from 'node:assert/strict';
import { test } from 'node:test';

import { acrossPaths, assertClose, native } from '../testlib/harness.mjs';
import { randomArray, refBackpropFilter, refBackpropInput, refConv2d, resolve, samePadding } from '../testlib/reference.mjs';

// Geometry with TensorFlow-style 'same' or 'valid' padding.
function geom({ batch, h, w, inC, outC, fh, fw = fh, sh = 1, sw = sh, dh = 1, dw = dh, padding = 'same' }) {
  const [padTop, padBottom] = padding === 'same' ? samePadding(h, fh, sh, dh) : padding === 'valid' ? [0, 0] : padding.slice(0, 2);
  const [padLeft, padRight] = padding === 'same' ? samePadding(w, fw, sw, dw) : padding === 'valid' ? [0, 0] : padding.slice(2, 4);
  return resolve({
    batch,
    inHeight: h,
    inWidth: w,
    inChannels: inC,
    outChannels: outC,
    filterHeight: fh,
    filterWidth: fw,
    strideHeight: sh,
    strideWidth: sw,
    dilationHeight: dh,
    dilationWidth: dw,
    padTop,
    padBottom,
    padLeft,
    padRight,
  });
}

const sizes = (g) => ({
  x: g.batch * g.inHeight * g.inWidth * g.inChannels,
  y: g.batch * g.outHeight * g.outWidth * g.outChannels,
  f: g.filterHeight * g.filterWidth * g.inChannels * g.outChannels,
});

const CASES = [
  geom({ batch: 1, h: 7, w: 9, inC: 3, outC: 5, fh: 3 }),
  geom({ batch: 3, h: 11, w: 5, inC: 17, outC: 20, fh: 3, sh: 2 }),
  geom({ batch: 3, h: 9, w: 9, inC: 1, outC: 32, fh: 5 }),
  geom({ batch: 1, h: 13, w: 10, inC: 6, outC: 33, fh: 5, sh: 2, padding: 'valid' }),
  geom({ batch: 3, h: 8, w: 7, inC: 20, outC: 1, fh: 1 }),
  geom({ batch: 1, h: 6, w: 6, inC: 16, outC: 3, fh: 1, sh: 2, padding: 'valid' }),
  geom({ batch: 3, h: 10, w: 9, inC: 5, outC: 7, fh: 3, fw: 5, sh: 2, sw: 1, padding: [0, 2, 1, 0] }),
  geom({ batch: 1, h: 12, w: 11, inC: 4, outC: 9, fh: 3, dh: 2 }),
  geom({ batch: 3, h: 5, w: 5, inC: 40, outC: 17, fh: 5, sh: 3, padding: [2, 1, 0, 3] }),
  geom({ batch: 1, h: 3, w: 4, inC: 300, outC: 19, fh: 2, padding: 'valid' }),
  geom({ batch: 2, h: 10, w: 8, inC: 2, outC: 5, fh: 3, dh: 2, dw: 1 }),
  geom({ batch: 2, h: 7, w: 6, inC: 3, outC: 4, fh: 1, sh: 2, padding: 'valid' }),
  geom({ batch: 3, h: 9, w: 11, inC: 15, outC: 24, fh: 4, fw: 3, sh: 2, sw: 3 }),
];

// The seed GAN's layers, batch cut to keep the float64 references quick but
// large enough that every path (phases, col2im, filter) splits across threads.
const GAN = {
  'D conv1 5x5 1->32 on 28x28': geom({ batch: 8, h: 28, w: 28, inC: 1, outC: 32, fh: 5 }),
  'D conv2 5x5 32->64 on 14x14': geom({ batch: 2, h: 14, w: 14, inC: 32, outC: 64, fh: 5 }),
  // conv2dTranspose [b,7,7,64] -> [b,14,14,32]: the conv it transposes maps 14x14x32 to 7x7x64.
  'G deconv1 7x7x64 -> 14x14x32': geom({ batch: 6, h: 14, w: 14, inC: 32, outC: 64, fh: 5, sh: 2 }),
  'G deconv2 14x14x32 -> 28x28x16': geom({ batch: 8, h: 28, w: 28, inC: 16, outC: 32, fh: 5, sh: 2 }),
  'G conv_out 1x1 16->1': geom({ batch: 2, h: 28, w: 28, inC: 16, outC: 1, fh: 1 }),
};

const label = (g) =>
  `[${g.batch},${g.inHeight},${g.inWidth},${g.inChannels}] ${g.filterHeight}x${g.filterWidth}->${g.outChannels} ` +
  `s${g.strideHeight}x${g.strideWidth} d${g.dilationHeight} pad ${g.padTop},${g.padBottom},${g.padLeft},${g.padRight}`;

function checkForward(g, name, { bias = false, relu = false } = {}) {
  const n = sizes(g);
  const x = randomArray(n.x, 1);
  const filter = randomArray(n.f, 2);
  const b = bias ? randomArray(g.outChannels, 3) : null;
  const want = refConv2d(g, x, filter, b, relu);
  acrossPaths(
    `conv2d ${name}`,
    () => {
      const y = new Float32Array(n.y).fill(NaN);
      native.conv2d({ ...g, x, filter, y, bias: b, activation: relu ? 'relu' : 'none' });
      return y;
    },
    (y, isa) => assertClose(y, want, `conv2d ${name} [${isa}]`),
  );
}

function checkBackpropInput(g, name, { bias = false, relu = false } = {}) {
  const n = sizes(g);
  const dy = randomArray(n.y, 4);
  const filter = randomArray(n.f, 5);
  const b = bias ? randomArray(g.inChannels, 6) : null;
  const want = refBackpropInput(g, dy, filter, b, relu);
  acrossPaths(
    `conv2dBackpropInput ${name}`,
    () => {
      const dx = new Float32Array(n.x).fill(NaN);
      native.conv2dBackpropInput({ ...g, dy, filter, dx, bias: b, activation: relu ? 'relu' : 'none' });
      return dx;
    },
    (dx, isa) => assertClose(dx, want, `conv2dBackpropInput ${name} [${isa}]`),
  );
}

function checkBackpropFilter(g, name) {
  const n = sizes(g);
  const x = randomArray(n.x, 7);
  const dy = randomArray(n.y, 8);
  const want = refBackpropFilter(g, x, dy);
  acrossPaths(
    `conv2dBackpropFilter ${name}`,
    () => {
      const dfilter = new Float32Array(n.f).fill(NaN);
      native.conv2dBackpropFilter({ ...g, x, dy, dfilter });
      return dfilter;
    },
    (df, isa) => assertClose(df, want, `conv2dBackpropFilter ${name} [${isa}]`),
  );
}

test('conv2d forward: strides, paddings, dilation, odd channels', () => {
  for (const g of CASES) checkForward(g, label(g));
});

test('conv2d forward with bias and ReLU', () => {
  for (const g of CASES.slice(0, 4)) checkForward(g, `${label(g)} +bias+relu`, { bias: true, relu: true });
});

test('conv2dBackpropInput: strides, paddings, dilation, odd channels', () => {
  for (const g of CASES) checkBackpropInput(g, label(g));
});

test('conv2dBackpropInput with bias and ReLU (fused conv2dTranspose)', () => {
  for (const g of [...CASES.slice(0, 4), CASES[5]]) checkBackpropInput(g, `${label(g)} +bias+relu`, { bias: true, relu: true });
});

test('conv2dBackpropFilter: strides, paddings, dilation, odd channels', () => {
  for (const g of CASES) checkBackpropFilter(g, label(g));
});

for (const [name, g] of Object.entries(GAN)) {
  test(`seed GAN layer ${name}: forward, backprop input, backprop filter`, () => {
    checkForward(g, name, { bias: true, relu: true });
    checkBackpropInput(g, name);
    checkBackpropFilter(g, name);
  });
}

test("conv2dTranspose 'same' stride 2 matches TensorFlow's output geometry", () => {
  // tf.conv2dTranspose(x [b,7,7,64], filter [5,5,32,64], [b,14,14,32], 2, 'same')
  const g = GAN['G deconv1 7x7x64 -> 14x14x32'];
  assert.deepEqual([g.outHeight, g.outWidth, g.padTop, g.padBottom], [7, 7, 1, 2]);
  assert.deepEqual(native.conv2dOutputSize(g), { outHeight: 7, outWidth: 7 });
});

test('convolutions honour offsets and leave the rest of the output buffer alone', () => {
  const g = CASES[1];
  const n = sizes(g);
  const pad = 13;
  const x = randomArray(n.x + pad, 1);
  const filter = randomArray(n.f + pad, 2);
  const bias = randomArray(g.outChannels + pad, 3);
  const y = new Float32Array(n.y + 2 * pad).fill(7);
  native.conv2d({ ...g, x, xOffset: pad, filter, filterOffset: pad, y, yOffset: pad, bias, biasOffset: pad });
  const want = refConv2d(g, x.subarray(pad), filter.subarray(pad), bias.subarray(pad), false);
  assertClose(y, want, 'conv2d offsets', (i) => i + pad);
  assert.ok(y.subarray(0, pad).every((v) => v === 7) && y.subarray(pad + n.y).every((v) => v === 7), 'conv2d wrote outside y');
  const df = new Float32Array(n.f + 2 * pad).fill(7);
  const dy = randomArray(n.y + pad, 4);
  native.conv2dBackpropFilter({ ...g, x, xOffset: pad, dy, dyOffset: pad, dfilter: df, dfilterOffset: pad });
  assertClose(df, refBackpropFilter(g, x.subarray(pad), dy.subarray(pad)), 'backprop filter offsets', (i) => i + pad);
  assert.ok(df.subarray(0, pad).every((v) => v === 7) && df.subarray(pad + n.f).every((v) => v === 7), 'dfilter written outside');
});

test('convolutions reject bad geometry and short buffers', () => {
  const g = CASES[0];
  const n = sizes(g);
  const args = { ...g, x: new Float32Array(n.x), filter: new Float32Array(n.f), y: new Float32Array(n.y) };
  assert.throws(() => native.conv2d({ ...args, y: new Float32Array(n.y - 1) }), RangeError);
  assert.throws(() => native.conv2d({ ...args, strideHeight: 0 }), RangeError);
  assert.throws(() => native.conv2d({ ...args, padTop: -1 }), RangeError);
  assert.throws(() => native.conv2d({ ...args, y: args.x.subarray(0, n.y) }), RangeError);
  assert.throws(() => native.conv2dBackpropInput({ ...g, dy: args.y, filter: args.filter, dx: new Float32Array(n.x - 1) }), RangeError);
  assert.throws(() => native.conv2dBackpropFilter({ ...g, x: args.x, dy: args.y, dfilter: new Float32Array(n.f - 1) }), RangeError);
});
