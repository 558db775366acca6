// Forward convolution as an implicit GEMM:
//   y[pixel, co] = sum over taps t and channels ci of x[pixel @ t, ci] * f[t, ci, co]
// A's rows are the output pixels and its K segments the window's taps (or
// filter rows, see Windows), contiguous in NHWC, so the kernel reads the
// image in place (padding taps read a zero row) and no im2col buffer exists.
#include "conv.h"
#include "pack.h"

namespace ganfleet {
namespace {

struct ForwardProblem {
  const Windows& w;
  const ConvGeometry& g;  // of the (possibly padded) input
  const float* f;
  float* y;
  int m, n, nseg, seglen;
  bool a_panel = false;
  std::ptrdiff_t a_stride = 0;

  ForwardProblem(const Windows& windows, const float* f_, float* y_)
      : w(windows),
        g(windows.g),
        f(f_),
        y(y_),
        m(g.batch * g.out_h * g.out_w),
        n(g.out_c),
        nseg(windows.nseg),
        seglen(windows.seglen) {}

  void ARows(int m0, int mr, const KBlock& kb, const float** out, int stride) const {
    PixelCursor px(m0, g.out_h, g.out_w);
    for (int i = 0; i < mr; ++i, px.Next()) {
      const int iy0 = px.y * g.stride_h - g.pad_t, ix0 = px.x * g.stride_w - g.pad_l;
      const float* image = w.x + static_cast<std::ptrdiff_t>(px.b) * g.in_h * g.in_w * g.in_c + kb.off;
      if (w.Interior(iy0, ix0)) {
        const float* corner = image + (static_cast<std::ptrdiff_t>(iy0) * g.in_w + ix0) * g.in_c;
        for (int s = 0; s < kb.ns; ++s) out[s * stride + i] = corner + w.seg_off[kb.s0 + s];
        continue;
      }
      // Only tap segments reach here (row segments come with padding written out).
      for (int s = 0; s < kb.ns; ++s) {
        const int iy = iy0 + w.seg_y[kb.s0 + s], ix = ix0 + w.seg_x[kb.s0 + s];
        const bool inside = iy >= 0 && iy < g.in_h && ix >= 0 && ix < g.in_w;
        out[s * stride + i] = inside ? image + (static_cast<std::ptrdiff_t>(iy) * g.in_w + ix) * g.in_c : ZeroRow();
      }
    }
  }
  const float* APanel(int, const KBlock&) const { return nullptr; }
  void PackB(const KBlock& kb, int n0, int nc, int nr, float* dst) const {
    const std::size_t panel = static_cast<std::size_t>(kb.k()) * nr;
    for (int s = 0; s < kb.ns; ++s) {
      const float* rows = f + (static_cast<std::ptrdiff_t>(kb.s0 + s) * seglen + kb.off) * g.out_c + n0;
      PackRows(rows, g.out_c, kb.len, nc, nr, dst + static_cast<std::size_t>(s) * kb.len * nr, panel);
    }
  }
  void CRows(int m0, int mr, float** out) const {
    for (int i = 0; i < mr; ++i) out[i] = y + static_cast<std::ptrdiff_t>(m0 + i) * g.out_c;
  }
};

}  // namespace

void Conv2d(const ConvGeometry& g, const float* x, const float* f, float* y, const Epilogue& ep, Exec& ex) {
  const Windows w = MakeWindows(g, x, ex.ws);
  RunGemm(ForwardProblem(w, f, y), ep, ex);
}

}  // namespace ganfleet
