// 2-D convolutions on NHWC tensors with [fh, fw, inC, outC] filters
// (TensorFlow layouts), as GEMMs that read the image in place.
#pragma once

#include <vector>

#include "gemm.h"
#include "workspace.h"

namespace ganfleet {

struct ConvGeometry {
  int batch, in_h, in_w, in_c, out_c;
  int f_h, f_w;
  int stride_h, stride_w;
  int dil_h, dil_w;
  int pad_t, pad_b, pad_l, pad_r;
  int out_h, out_w;  // derived by ResolveGeometry

  long long InputSize() const { return 1LL * batch * in_h * in_w * in_c; }
  long long FilterSize() const { return 1LL * f_h * f_w * in_c * out_c; }
  long long OutputSize() const { return 1LL * batch * out_h * out_w * out_c; }
};

// (image, row, column) of a flat pixel index in an h x w grid, stepped
// without divisions (index arithmetic runs once per tile row and tap).
struct PixelCursor {
  int b, y, x;
  int h, w;
  PixelCursor(int index, int h_, int w_) : b(index / w_ / h_), y(index / w_ % h_), x(index % w_), h(h_), w(w_) {}
  void Next() {
    if (++x < w) return;
    x = 0;
    if (++y < h) return;
    y = 0;
    ++b;
  }
};

// The K segments of a convolution window (the rows of its im2col row),
// located relative to the window's corner in x.
//   Tap segments: one per tap, inC contiguous floats.
//   Row segments: one per filter row, fW * inC contiguous floats (dilation 1
//   across). Chosen for few channels, where per-tap segments would be
//   too short; the input padding is then written out (a padded copy of x)
//   so that every window lies inside the image.
struct Windows {
  ConvGeometry g;  // describes x (padding folded in when written out)
  const float* x;
  int nseg, seglen;
  std::vector<int> seg_y, seg_x;        // segment start, pixels from the corner
  std::vector<std::ptrdiff_t> seg_off;  // the same, in floats
  int span_h, span_w;                   // window extent minus one

  bool Interior(int iy0, int ix0) const { return iy0 >= 0 && ix0 >= 0 && iy0 + span_h < g.in_h && ix0 + span_w < g.in_w; }
};
Windows MakeWindows(const ConvGeometry& g, const float* x, Workspace& ws);

// Derives out_h/out_w; returns an error message, or nullptr when valid.
const char* ResolveGeometry(ConvGeometry* g);

// Padding taps point here; long enough for any K block (see SplitK).
const float* ZeroRow();
constexpr int kZeroRowLength = 1024;

// y = act(conv(x, f) + bias)
void Conv2d(const ConvGeometry& g, const float* x, const float* f, float* y, const Epilogue& ep, Exec& ex);
// dx = act(dconv/dx(dy, f) + bias): also conv2dTranspose of dy.
void Conv2dBackpropInput(const ConvGeometry& g, const float* dy, const float* f, float* dx, const Epilogue& ep, Exec& ex);
// df = sum over batch and output pixels of x patch (outer) dy
void Conv2dBackpropFilter(const ConvGeometry& g, const float* x, const float* dy, float* df, Exec& ex);

}  // namespace ganfleet
