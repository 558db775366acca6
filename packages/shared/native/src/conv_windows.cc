#include <algorithm>
#include <cstring>

#include "conv.h"

namespace ganfleet {
namespace {

// Below this many channels a tap segment is too short to amortise its
// pointer; whole filter rows are used instead.
constexpr int kRowSegmentChannels = 16;

// Copies x into dst with the geometry's zero padding written out.
void Pad(const ConvGeometry& g, const float* x, float* dst) {
  const std::size_t c = g.in_c;
  const std::size_t row = (static_cast<std::size_t>(g.pad_l) + g.in_w + g.pad_r) * c;
  for (int b = 0; b < g.batch; ++b)
    for (int y = 0; y < g.pad_t + g.in_h + g.pad_b; ++y, dst += row) {
      const int iy = y - g.pad_t;
      if (iy < 0 || iy >= g.in_h) {
        std::fill(dst, dst + row, 0.0f);
        continue;
      }
      std::fill(dst, dst + g.pad_l * c, 0.0f);
      std::memcpy(dst + g.pad_l * c, x + ((static_cast<std::size_t>(b) * g.in_h + iy) * g.in_w) * c, sizeof(float) * g.in_w * c);
      std::fill(dst + (g.pad_l + g.in_w) * c, dst + row, 0.0f);
    }
}

}  // namespace

Windows MakeWindows(const ConvGeometry& g, const float* x, Workspace& ws) {
  Windows w{g, x, 0, 0, {}, {}, {}, (g.f_h - 1) * g.dil_h, (g.f_w - 1) * g.dil_w};
  const bool rows = g.dil_w == 1 && g.f_w > 1 && g.in_c < kRowSegmentChannels;
  if (rows && (g.pad_t > 0 || g.pad_b > 0 || g.pad_l > 0 || g.pad_r > 0)) {
    w.g.in_h += g.pad_t + g.pad_b;
    w.g.in_w += g.pad_l + g.pad_r;
    w.g.pad_t = w.g.pad_b = w.g.pad_l = w.g.pad_r = 0;
    float* padded = ws.Shared(static_cast<std::size_t>(w.g.InputSize()));
    Pad(g, x, padded);
    w.x = padded;
  }
  w.nseg = rows ? g.f_h : g.f_h * g.f_w;
  w.seglen = rows ? g.f_w * g.in_c : g.in_c;
  for (int ky = 0; ky < g.f_h; ++ky)
    for (int kx = 0; kx < (rows ? 1 : g.f_w); ++kx) {
      w.seg_y.push_back(ky * g.dil_h);
      w.seg_x.push_back(kx * g.dil_w);
      w.seg_off.push_back((static_cast<std::ptrdiff_t>(w.seg_y.back()) * w.g.in_w + w.seg_x.back()) * g.in_c);
    }
  return w;
}

}  // namespace ganfleet
