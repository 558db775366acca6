#include "pack.h"

#include <algorithm>
#include <cstring>

namespace ganfleet {

void PackRows(const float* src, std::ptrdiff_t ld, int kc, int nc, int nr, float* dst, std::size_t panel_stride) {
  for (int j0 = 0; j0 < nc; j0 += nr, dst += panel_stride) {
    const int w = std::min(nr, nc - j0);
    const float* s = src + j0;
    float* d = dst;
    for (int k = 0; k < kc; ++k, s += ld, d += nr) {
      std::memcpy(d, s, sizeof(float) * w);
      std::fill(d + w, d + nr, 0.0f);
    }
  }
}

void PackCols(const float* src, std::ptrdiff_t ld, int kc, int nc, int nr, float* dst, std::size_t panel_stride) {
  // Eight k at a time: each source row is read in short contiguous runs
  // while the destination rows being written stay in L1.
  constexpr int kStep = 8;
  for (int j0 = 0; j0 < nc; j0 += nr, dst += panel_stride) {
    const int w = std::min(nr, nc - j0);
    for (int k0 = 0; k0 < kc; k0 += kStep) {
      const int kn = std::min(kStep, kc - k0);
      float* d = dst + static_cast<std::size_t>(k0) * nr;
      for (int j = 0; j < w; ++j) {
        const float* s = src + (j0 + j) * ld + k0;
        for (int k = 0; k < kn; ++k) d[k * nr + j] = s[k];
      }
      for (int k = 0; k < kn; ++k) std::fill(d + k * nr + w, d + (k + 1) * nr, 0.0f);
    }
  }
}

}  // namespace ganfleet
