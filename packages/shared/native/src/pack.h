// Packing of B blocks into the kernels' panel layout: for each group of nr
// columns, kc rows of nr floats (zero padded past nc), panels panel_stride
// floats apart. Transposes are folded in here so no separate pass exists.
#pragma once

#include <cstddef>

#include <cstring>

namespace ganfleet {

// Copies a short run (often a handful of channels): fixed-size chunks
// compile to vector moves where a variable-size memcpy would be a call.
inline void CopyRun(float* dst, const float* src, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) std::memcpy(dst + i, src + i, 8 * sizeof(float));
  for (; i < n; ++i) dst[i] = src[i];
}

// B[k][j] = src[k * ld + j]
void PackRows(const float* src, std::ptrdiff_t ld, int kc, int nc, int nr, float* dst, std::size_t panel_stride);
// B[k][j] = src[j * ld + k]
void PackCols(const float* src, std::ptrdiff_t ld, int kc, int nc, int nr, float* dst, std::size_t panel_stride);

}  // namespace ganfleet
