// Naive float64 references and helpers for the addon's tests, written from
// the mathematical definitions (no blocking, phases or packing).

/** Deterministic floats in [-1, 1) (mulberry32). */
export function randomArray(length, seed) {
  let s = seed >>> 0;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

/** ||got - want|| / ||want|| over `want.length` elements read through `at`. */
export function relativeL2(got, want, at = (i) => i) {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    const d = got[at(i)] - want[i];
    num += d * d;
    den += want[i] * want[i];
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

/** C (m x n, row-major, dense) = act(alpha op(A) op(B) + beta C0 + bias). */
export function refGemm({ transA, transB, m, n, k, alpha, a, aOffset, lda, b, bOffset, ldb, beta, c0, cOffset, ldc, bias, relu }) {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const av = a[aOffset + (transA ? p * lda + i : i * lda + p)];
        const bv = b[bOffset + (transB ? j * ldb + p : p * ldb + j)];
        s += av * bv;
      }
      let v = alpha * s + (beta === 0 ? 0 : beta * c0[cOffset + i * ldc + j]);
      if (bias) v += bias[j];
      out[i * n + j] = relu && v < 0 ? 0 : v;
    }
  return out;
}

/** TensorFlow's 'same' padding for one dimension. */
export function samePadding(inSize, filter, stride, dilation = 1) {
  const out = Math.ceil(inSize / stride);
  const total = Math.max((out - 1) * stride + (filter - 1) * dilation + 1 - inSize, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** Geometry with defaults filled and output size derived. */
export function resolve(g) {
  const r = { strideHeight: 1, strideWidth: 1, dilationHeight: 1, dilationWidth: 1, padTop: 0, padBottom: 0, padLeft: 0, padRight: 0, ...g };
  r.outHeight = Math.floor((r.inHeight + r.padTop + r.padBottom - (r.filterHeight - 1) * r.dilationHeight - 1) / r.strideHeight) + 1;
  r.outWidth = Math.floor((r.inWidth + r.padLeft + r.padRight - (r.filterWidth - 1) * r.dilationWidth - 1) / r.strideWidth) + 1;
  return r;
}

// Calls fn(b, oy, ox, ky, kx, iy, ix) for every (output pixel, tap) that
// lands inside the image.
function forEachTap(g, fn) {
  for (let b = 0; b < g.batch; b++)
    for (let oy = 0; oy < g.outHeight; oy++)
      for (let ox = 0; ox < g.outWidth; ox++)
        for (let ky = 0; ky < g.filterHeight; ky++)
          for (let kx = 0; kx < g.filterWidth; kx++) {
            const iy = oy * g.strideHeight - g.padTop + ky * g.dilationHeight;
            const ix = ox * g.strideWidth - g.padLeft + kx * g.dilationWidth;
            if (iy >= 0 && iy < g.inHeight && ix >= 0 && ix < g.inWidth) fn(b, oy, ox, ky, kx, iy, ix);
          }
}

const xIndex = (g, b, iy, ix, c) => ((b * g.inHeight + iy) * g.inWidth + ix) * g.inChannels + c;
const yIndex = (g, b, oy, ox, c) => ((b * g.outHeight + oy) * g.outWidth + ox) * g.outChannels + c;
const fIndex = (g, ky, kx, ci, co) => ((ky * g.filterWidth + kx) * g.inChannels + ci) * g.outChannels + co;

function epilogue(out, channels, bias, relu) {
  for (let i = 0; i < out.length; i++) {
    const v = out[i] + (bias ? bias[i % channels] : 0);
    out[i] = relu && v < 0 ? 0 : v;
  }
  return out;
}

export function refConv2d(g, x, f, bias, relu) {
  const y = new Float64Array(g.batch * g.outHeight * g.outWidth * g.outChannels);
  forEachTap(g, (b, oy, ox, ky, kx, iy, ix) => {
    for (let co = 0; co < g.outChannels; co++) {
      let s = 0;
      for (let ci = 0; ci < g.inChannels; ci++) s += x[xIndex(g, b, iy, ix, ci)] * f[fIndex(g, ky, kx, ci, co)];
      y[yIndex(g, b, oy, ox, co)] += s;
    }
  });
  return epilogue(y, g.outChannels, bias, relu);
}

/** Scatter form: each dy element spreads through the filter onto dx. */
export function refBackpropInput(g, dy, f, bias, relu) {
  const dx = new Float64Array(g.batch * g.inHeight * g.inWidth * g.inChannels);
  forEachTap(g, (b, oy, ox, ky, kx, iy, ix) => {
    for (let ci = 0; ci < g.inChannels; ci++) {
      let s = 0;
      for (let co = 0; co < g.outChannels; co++) s += dy[yIndex(g, b, oy, ox, co)] * f[fIndex(g, ky, kx, ci, co)];
      dx[xIndex(g, b, iy, ix, ci)] += s;
    }
  });
  return epilogue(dx, g.inChannels, bias, relu);
}

export function refBackpropFilter(g, x, dy) {
  const df = new Float64Array(g.filterHeight * g.filterWidth * g.inChannels * g.outChannels);
  forEachTap(g, (b, oy, ox, ky, kx, iy, ix) => {
    for (let ci = 0; ci < g.inChannels; ci++) {
      const xv = x[xIndex(g, b, iy, ix, ci)];
      for (let co = 0; co < g.outChannels; co++) df[fIndex(g, ky, kx, ci, co)] += xv * dy[yIndex(g, b, oy, ox, co)];
    }
  });
  return df;
}
