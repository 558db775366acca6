// Gradient of a convolution with respect to its input (= transposed
// convolution), split into stride phases so no inserted zero is multiplied.
//
// Input pixel iy receives dy[oy] * f[ky] exactly when iy + pad = oy*stride +
// ky*dilation. Pixels with equal (iy + pad) mod stride form one phase; it
// sees only the taps with the same ky*dilation mod stride, and its pixels
// form a regular grid. Each phase is then a gather-form implicit GEMM
//   dx[pixel, ci] = sum over its taps t and co of dy[pixel @ t, co] * f[t, ci, co]
// whose rows are that grid's pixels, so every dx element is written once,
// by one thread, in a fixed order.
//
// With few input channels that GEMM would be too narrow (N = inC), so the
// col2im form is used instead: dcols = dy . f^T (K = outC, N = taps * inC),
// then every dx element gathers its taps' entries of dcols, in tap order.
#include <algorithm>
#include <vector>

#include "conv.h"
#include "pack.h"
#include "sgemm.h"

namespace ganfleet {
namespace {

struct Phase {
  std::vector<int> ky, kx;  // taps of this phase: t = i * kx.size() + j
  // Grid pixel (gy, gx) meets tap t at dy pixel (gy + tap_y[t], gx + tap_x[t])
  // (the division by the stride is exact and done once, here).
  std::vector<int> tap_y, tap_x;
  std::vector<std::ptrdiff_t> tap_off;  // the same, in floats of dy
  int min_y, max_y, min_x, max_x;       // extremes of tap_y, tap_x
  int iy0, ix0;                         // first pixel of the grid
  int ny, nx;                           // grid size
};

int FirstOfResidue(int residue, int pad, int stride) { return ((residue - pad) % stride + stride) % stride; }
int GridCount(int first, int size, int stride) { return first < size ? (size - 1 - first) / stride + 1 : 0; }

Phase MakePhase(const ConvGeometry& g, int ry, int rx) {
  Phase p;
  for (int ky = 0; ky < g.f_h; ++ky)
    if (ky * g.dil_h % g.stride_h == ry) p.ky.push_back(ky);
  for (int kx = 0; kx < g.f_w; ++kx)
    if (kx * g.dil_w % g.stride_w == rx) p.kx.push_back(kx);
  p.iy0 = FirstOfResidue(ry, g.pad_t, g.stride_h);
  p.ix0 = FirstOfResidue(rx, g.pad_l, g.stride_w);
  p.ny = GridCount(p.iy0, g.in_h, g.stride_h);
  p.nx = GridCount(p.ix0, g.in_w, g.stride_w);
  p.min_y = p.min_x = g.out_h + g.out_w;
  p.max_y = p.max_x = -p.min_y;
  for (int ky : p.ky)
    for (int kx : p.kx) {
      const int ty = (p.iy0 + g.pad_t - ky * g.dil_h) / g.stride_h, tx = (p.ix0 + g.pad_l - kx * g.dil_w) / g.stride_w;
      p.tap_y.push_back(ty);
      p.tap_x.push_back(tx);
      p.tap_off.push_back((static_cast<std::ptrdiff_t>(ty) * g.out_w + tx) * g.out_c);
      p.min_y = std::min(p.min_y, ty);
      p.max_y = std::max(p.max_y, ty);
      p.min_x = std::min(p.min_x, tx);
      p.max_x = std::max(p.max_x, tx);
    }
  return p;
}

struct PhaseProblem {
  const ConvGeometry& g;
  const Phase& ph;
  const float* dy;
  const float* f;
  float* dx;
  int m, n, nseg, seglen;
  bool a_panel = false;
  std::ptrdiff_t a_stride = 0;

  PhaseProblem(const ConvGeometry& geom, const Phase& phase, const float* dy_, const float* f_, float* dx_)
      : g(geom),
        ph(phase),
        dy(dy_),
        f(f_),
        dx(dx_),
        m(geom.batch * phase.ny * phase.nx),
        n(geom.in_c),
        nseg(static_cast<int>(phase.ky.size() * phase.kx.size())),
        seglen(geom.out_c) {}

  void ARows(int m0, int mr, const KBlock& kb, const float** out, int stride) const {
    PixelCursor px(m0, ph.ny, ph.nx);
    for (int i = 0; i < mr; ++i, px.Next()) {
      const float* grad = dy + static_cast<std::ptrdiff_t>(px.b) * g.out_h * g.out_w * g.out_c + kb.off;
      if (px.y + ph.min_y >= 0 && px.x + ph.min_x >= 0 && px.y + ph.max_y < g.out_h && px.x + ph.max_x < g.out_w) {
        // Every tap lands inside dy: no bounds checks.
        const float* at = grad + (static_cast<std::ptrdiff_t>(px.y) * g.out_w + px.x) * g.out_c;
        for (int s = 0; s < kb.ns; ++s) out[s * stride + i] = at + ph.tap_off[kb.s0 + s];
        continue;
      }
      for (int s = 0; s < kb.ns; ++s) {
        const int oy = px.y + ph.tap_y[kb.s0 + s], ox = px.x + ph.tap_x[kb.s0 + s];
        const bool inside = oy >= 0 && oy < g.out_h && ox >= 0 && ox < g.out_w;
        out[s * stride + i] = inside ? grad + (static_cast<std::ptrdiff_t>(oy) * g.out_w + ox) * g.out_c : ZeroRow();
      }
    }
  }
  const float* APanel(int, const KBlock&) const { return nullptr; }
  void PackB(const KBlock& kb, int n0, int nc, int nr, float* dst) const {
    const int ntx = static_cast<int>(ph.kx.size());
    const std::size_t panel = static_cast<std::size_t>(kb.k()) * nr;
    for (int s = 0; s < kb.ns; ++s) {
      const int t = kb.s0 + s;
      const std::ptrdiff_t tap = static_cast<std::ptrdiff_t>(ph.ky[t / ntx]) * g.f_w + ph.kx[t % ntx];
      // B[co][ci] = f[tap, ci, co]: the tap's filter matrix, transposed.
      const float* w = f + (tap * g.in_c + n0) * g.out_c + kb.off;
      PackCols(w, g.out_c, kb.len, nc, nr, dst + static_cast<std::size_t>(s) * kb.len * nr, panel);
    }
  }
  void CRows(int m0, int mr, float** out) const {
    PixelCursor px(m0, ph.ny, ph.nx);
    for (int i = 0; i < mr; ++i, px.Next()) {
      const int iy = ph.iy0 + px.y * g.stride_h, ix = ph.ix0 + px.x * g.stride_w;
      out[i] = dx + ((static_cast<std::ptrdiff_t>(px.b) * g.in_h + iy) * g.in_w + ix) * g.in_c;
    }
  }
};

// A phase no tap reaches (filter smaller than the stride) gets act(bias).
void FillUntouched(const ConvGeometry& g, const Phase& ph, float* dx, const Epilogue& ep) {
  for (int b = 0; b < g.batch; ++b)
    for (int gy = 0; gy < ph.ny; ++gy)
      for (int gx = 0; gx < ph.nx; ++gx) {
        float* row = dx + ((static_cast<std::ptrdiff_t>(b) * g.in_h + ph.iy0 + gy * g.stride_h) * g.in_w + ph.ix0 + gx * g.stride_w) * g.in_c;
        for (int c = 0; c < g.in_c; ++c) {
          const float v = ep.bias != nullptr ? ep.bias[c] : 0.0f;
          row[c] = ep.relu && v < 0.0f ? 0.0f : v;
        }
      }
}

// Below this many input channels the col2im form is used.
constexpr int kCol2ImChannels = 16;
// dcols is produced a few images at a time, in at most this many floats.
constexpr std::size_t kCol2ImFloats = 256 * 1024;

// dx row (b, iy) of a chunk: each element adds up its valid taps' dcols
// entries, in tap order, then gets the epilogue.
void GatherRow(const ConvGeometry& g, const float* cols, int b, int iy, float* dx, const Epilogue& ep) {
  const int taps_c = g.f_h * g.f_w * g.in_c;
  float* out = dx + (static_cast<std::ptrdiff_t>(b) * g.in_h + iy) * g.in_w * g.in_c;
  std::fill(out, out + static_cast<std::ptrdiff_t>(g.in_w) * g.in_c, 0.0f);
  for (int ky = 0; ky < g.f_h; ++ky) {
    const int ey = iy + g.pad_t - ky * g.dil_h;
    if (ey < 0 || ey % g.stride_h != 0 || ey / g.stride_h >= g.out_h) continue;
    const float* row = cols + (static_cast<std::ptrdiff_t>(b) * g.out_h + ey / g.stride_h) * g.out_w * taps_c;
    for (int kx = 0; kx < g.f_w; ++kx) {
      // First ix whose tap kx lands on an output column: ix + pad_l - kx*dil = ox*stride.
      int ix = kx * g.dil_w - g.pad_l;
      if (ix < 0) ix += (-ix + g.stride_w - 1) / g.stride_w * g.stride_w;
      int ox = (ix + g.pad_l - kx * g.dil_w) / g.stride_w;
      const float* src = row + static_cast<std::ptrdiff_t>(ox) * taps_c + (ky * g.f_w + kx) * g.in_c;
      for (; ix < g.in_w && ox < g.out_w; ix += g.stride_w, ++ox, src += taps_c)
        for (int c = 0; c < g.in_c; ++c) out[ix * g.in_c + c] += src[c];
    }
  }
  for (int ix = 0; ix < g.in_w; ++ix)
    for (int c = 0; c < g.in_c; ++c) {
      float& v = out[ix * g.in_c + c];
      if (ep.bias != nullptr) v += ep.bias[c];
      if (ep.relu && v < 0.0f) v = 0.0f;
    }
}

void BackpropInputCol2Im(const ConvGeometry& g, const float* dy, const float* f, float* dx, const Epilogue& ep, Exec& ex) {
  const int taps_c = g.f_h * g.f_w * g.in_c;
  const std::size_t image = static_cast<std::size_t>(g.out_h) * g.out_w * taps_c;
  const int chunk = static_cast<int>(std::max<std::size_t>(1, kCol2ImFloats / image));
  float* cols = ex.ws.Shared(image * std::min(chunk, g.batch));
  for (int b0 = 0; b0 < g.batch; b0 += chunk) {
    const int nb = std::min(chunk, g.batch - b0);
    const int pixels = nb * g.out_h * g.out_w;
    // f is [taps * inC][outC] row-major: f^T is a transposed read.
    const MatrixArgs m{false, true, pixels, taps_c, g.out_c, dy + static_cast<std::ptrdiff_t>(b0) * g.out_h * g.out_w * g.out_c,
                       g.out_c, f, g.out_c, cols, taps_c};
    Sgemm(m, Epilogue{}, ex);
    float* dx0 = dx + static_cast<std::ptrdiff_t>(b0) * g.in_h * g.in_w * g.in_c;
    ex.pool.Run(nb * g.in_h, [&](int row, int) { GatherRow(g, cols, row / g.in_h, row % g.in_h, dx0, ep); });
  }
}

}  // namespace

void Conv2dBackpropInput(const ConvGeometry& g, const float* dy, const float* f, float* dx, const Epilogue& ep, Exec& ex) {
  if (g.in_c < kCol2ImChannels) {
    BackpropInputCol2Im(g, dy, f, dx, ep, ex);
    return;
  }
  for (int ry = 0; ry < g.stride_h; ++ry)
    for (int rx = 0; rx < g.stride_w; ++rx) {
      const Phase ph = MakePhase(g, ry, rx);
      if (ph.ny == 0 || ph.nx == 0) continue;
      if (ph.ky.empty() || ph.kx.empty()) {
        FillUntouched(g, ph, dx, ep);
      } else {
        RunGemm(PhaseProblem(g, ph, dy, f, dx), ep, ex);
      }
    }
}

}  // namespace ganfleet
