#include <climits>

#include "conv.h"

namespace ganfleet {
namespace {

int OutputSize(long long in, long long pad_a, long long pad_b, long long filter, long long dilation, long long stride) {
  const long long span = in + pad_a + pad_b - ((filter - 1) * dilation + 1);
  return span < 0 ? 0 : static_cast<int>(span / stride + 1);
}

}  // namespace

const char* ResolveGeometry(ConvGeometry* g) {
  if (g->batch < 1 || g->in_h < 1 || g->in_w < 1 || g->in_c < 1 || g->out_c < 1 || g->f_h < 1 || g->f_w < 1)
    return "sizes must be at least 1";
  if (g->stride_h < 1 || g->stride_w < 1 || g->dil_h < 1 || g->dil_w < 1) return "strides and dilations must be at least 1";
  if (g->pad_t < 0 || g->pad_b < 0 || g->pad_l < 0 || g->pad_r < 0) return "padding must not be negative";
  g->out_h = OutputSize(g->in_h, g->pad_t, g->pad_b, g->f_h, g->dil_h, g->stride_h);
  g->out_w = OutputSize(g->in_w, g->pad_l, g->pad_r, g->f_w, g->dil_w, g->stride_w);
  // Every GEMM dimension below must fit an int.
  const long long dims[] = {1LL * g->batch * g->in_h * g->in_w, 1LL * g->batch * g->out_h * g->out_w, 1LL * g->f_h * g->f_w * g->in_c,
                            1LL * g->f_h * g->f_w * g->out_c};
  for (long long d : dims)
    if (d > INT_MAX) return "tensor too large";
  return nullptr;
}

const float* ZeroRow() {
  alignas(64) static const float zeros[kZeroRowLength] = {};
  return zeros;
}

}  // namespace ganfleet
