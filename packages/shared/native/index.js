// Loader and object-argument wrappers for the ganfleet_native addon (see index.d.ts).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const binaryPath = fileURLToPath(new URL('./build/Release/ganfleet_native.node', import.meta.url));

function load() {
  try {
    return createRequire(import.meta.url)(binaryPath);
  } catch (cause) {
    throw new Error(`ganfleet native addon unavailable (${binaryPath}): build it with 'node packages/shared/native/build.mjs'`, { cause });
  }
}

const native = load();

export const isa = () => native.isa();
export const supportedIsas = () => native.supportedIsas();
export const setIsa = (name) => native.setIsa(name);
export const threads = () => native.threads();
export const setThreads = (n) => native.setThreads(n);

function isRelu(activation = 'none') {
  if (activation !== 'none' && activation !== 'relu') throw new RangeError(`activation: expected 'none' or 'relu', got '${activation}'`);
  return activation === 'relu';
}

export function sgemm({
  transA = false,
  transB = false,
  m,
  n,
  k,
  alpha = 1,
  a,
  aOffset = 0,
  lda = Math.max(1, transA ? m : k),
  b,
  bOffset = 0,
  ldb = Math.max(1, transB ? k : n),
  beta = 0,
  c,
  cOffset = 0,
  ldc = Math.max(1, n),
  bias = null,
  biasOffset = 0,
  activation,
}) {
  native.sgemm(transA, transB, m, n, k, alpha, a, aOffset, lda, b, bOffset, ldb, beta, c, cOffset, ldc, bias, biasOffset, isRelu(activation));
}

function geometry(g) {
  return [
    g.batch,
    g.inHeight,
    g.inWidth,
    g.inChannels,
    g.outChannels,
    g.filterHeight,
    g.filterWidth,
    g.strideHeight ?? 1,
    g.strideWidth ?? 1,
    g.dilationHeight ?? 1,
    g.dilationWidth ?? 1,
    g.padTop ?? 0,
    g.padBottom ?? 0,
    g.padLeft ?? 0,
    g.padRight ?? 0,
  ];
}

export function conv2dOutputSize(g) {
  const size = (input, padA = 0, padB = 0, filter, dilation = 1, stride = 1) =>
    Math.max(0, Math.floor((input + padA + padB - (filter - 1) * dilation - 1) / stride) + 1);
  return {
    outHeight: size(g.inHeight, g.padTop, g.padBottom, g.filterHeight, g.dilationHeight, g.strideHeight),
    outWidth: size(g.inWidth, g.padLeft, g.padRight, g.filterWidth, g.dilationWidth, g.strideWidth),
  };
}

export function conv2d(p) {
  const { x, xOffset = 0, filter, filterOffset = 0, y, yOffset = 0, bias = null, biasOffset = 0, activation } = p;
  native.conv2d(...geometry(p), x, xOffset, filter, filterOffset, y, yOffset, bias, biasOffset, isRelu(activation));
}

export function conv2dBackpropInput(p) {
  const { dy, dyOffset = 0, filter, filterOffset = 0, dx, dxOffset = 0, bias = null, biasOffset = 0, activation } = p;
  native.conv2dBackpropInput(...geometry(p), dy, dyOffset, filter, filterOffset, dx, dxOffset, bias, biasOffset, isRelu(activation));
}

export function conv2dBackpropFilter(p) {
  const { x, xOffset = 0, dy, dyOffset = 0, dfilter, dfilterOffset = 0 } = p;
  native.conv2dBackpropFilter(...geometry(p), x, xOffset, dy, dyOffset, dfilter, dfilterOffset);
}

// The coordinator's update loops (update_loops.h): the same IEEE double operations as
// packages/shared/src/model/updateLoops.ts, bit for bit.
export function adamUpdate({ p, g, m, v, from = 0, to = g.length, beta1, beta2, epsilon, rate, invC2, copy }) {
  native.adamUpdate(p, g, m, v, from, to, beta1, beta2, epsilon, rate, invC2, copy);
}

export function emaFold({ avg, p, from = 0, to = p.length, beta }) {
  native.emaFold(avg, p, from, to, beta);
}

export function meanOfTwo({ out, x0, w0, x1, w1, total }) {
  return native.meanOfTwo(out, x0, w0, x1, w1, total);
}

export function sumTerms({ terms, acc = null, out = null, total = 1 }) {
  return native.sumTerms(
    terms.map((t) => t.values),
    terms.map((t) => t.weight),
    acc,
    out,
    total,
  );
}

export const sumOfSquares = (values, into) => native.sumOfSquares(values, into);
export const mapShared = (path, bytes) => native.mapShared(path, bytes);
export const ring = (buffer, offset) => native.ring(buffer, offset);
export const waitRing = (buffer, offset, seen, timeoutMs) => native.waitRing(buffer, offset, seen, timeoutMs);
export const watchRing = (buffer, offset, callback) => native.watchRing(buffer, offset, callback);
