// Gradient of a convolution with respect to its filter:
//   df[t, ci, co] = sum over pixels p of x[p @ t, ci] * dy[p, co]
// computed as the GEMM dfT[co, (t, ci)] = dyT . cols with K = every output
// pixel of the batch. dyT is read in place (panel mode); cols, the image
// patches, exist only as packed B blocks: contiguous runs of window
// segments (see Windows) copied straight from the NHWC image. The reduction is never split across
// threads; they share out (t, ci) columns and co rows.
#include <algorithm>
#include <vector>

#include "conv.h"
#include "pack.h"

namespace ganfleet {
namespace {

struct FilterProblem {
  const Windows& w;
  const ConvGeometry& g;  // of the (possibly padded) input
  const float* dy;
  float* dft;  // [out_c][f_h * f_w * in_c]
  int m, n, nseg = 1, seglen;
  bool a_panel = true;
  std::ptrdiff_t a_stride;

  FilterProblem(const Windows& windows, const float* dy_, float* dft_)
      : w(windows),
        g(windows.g),
        dy(dy_),
        dft(dft_),
        m(g.out_c),
        n(g.f_h * g.f_w * g.in_c),
        seglen(g.batch * g.out_h * g.out_w),
        a_stride(g.out_c) {}

  void ARows(int, int, const KBlock&, const float**, int) const {}
  const float* APanel(int m0, const KBlock& kb) const { return dy + static_cast<std::ptrdiff_t>(kb.off) * g.out_c + m0; }

  // One contiguous copy: part of one window segment into one panel.
  struct Run {
    int seg;              // window segment
    int within, len;      // floats [within, within + len) of it
    std::size_t lane;     // destination: panel * panel_stride + column in panel
  };

  void PackB(const KBlock& kb, int n0, int nc, int nr, float* dst) const {
    const std::size_t panel = static_cast<std::size_t>(kb.k()) * nr;
    std::vector<Run> runs;
    for (int j = n0; j < n0 + nc;) {
      const int seg = j / w.seglen, within = j % w.seglen, col = (j - n0) % nr;
      const int len = std::min({w.seglen - within, n0 + nc - j, nr - col});
      runs.push_back({seg, within, len, (j - n0) / nr * panel + col});
      j += len;
    }
    const int pad_cols = nc % nr == 0 ? 0 : nr - nc % nr;
    float* pad = dst + (nc - 1) / nr * panel + nc % nr;
    PixelCursor px(kb.off, g.out_h, g.out_w);
    for (int k = 0; k < kb.len; ++k, px.Next()) {
      const float* image = w.x + static_cast<std::ptrdiff_t>(px.b) * g.in_h * g.in_w * g.in_c;
      const int iy0 = px.y * g.stride_h - g.pad_t, ix0 = px.x * g.stride_w - g.pad_l;
      float* row = dst + static_cast<std::size_t>(k) * nr;
      if (w.Interior(iy0, ix0)) {
        const float* corner = image + (static_cast<std::ptrdiff_t>(iy0) * g.in_w + ix0) * g.in_c;
        for (const Run& r : runs) CopyRun(row + r.lane, corner + w.seg_off[r.seg] + r.within, r.len);
      } else {
        // Only tap segments reach here (row segments come with padding written out).
        for (const Run& r : runs) {
          const int iy = iy0 + w.seg_y[r.seg], ix = ix0 + w.seg_x[r.seg];
          const bool inside = iy >= 0 && iy < g.in_h && ix >= 0 && ix < g.in_w;
          const float* src = inside ? image + (static_cast<std::ptrdiff_t>(iy) * g.in_w + ix) * g.in_c + r.within : ZeroRow();
          CopyRun(row + r.lane, src, r.len);
        }
      }
      std::fill(pad + static_cast<std::size_t>(k) * nr, pad + static_cast<std::size_t>(k) * nr + pad_cols, 0.0f);
    }
  }
  void CRows(int m0, int mr, float** out) const {
    for (int i = 0; i < mr; ++i) out[i] = dft + static_cast<std::ptrdiff_t>(m0 + i) * n;
  }
};

}  // namespace

void Conv2dBackpropFilter(const ConvGeometry& g, const float* x, const float* dy, float* df, Exec& ex) {
  const Windows w = MakeWindows(g, x, ex.ws);
  FilterProblem p(w, dy, nullptr);
  std::vector<float> dft(static_cast<std::size_t>(p.m) * p.n);
  p.dft = dft.data();
  RunGemm(p, Epilogue{}, ex);
  for (int co = 0; co < p.m; ++co)
    for (int j = 0; j < p.n; ++j) df[static_cast<std::ptrdiff_t>(j) * g.out_c + co] = dft[static_cast<std::size_t>(co) * p.n + j];
}

}  // namespace ganfleet
