// Register-blocked micro-kernel interface shared by all ISA paths.
//
// A kernel computes an m x n tile (m <= mr, n <= nr) of C from
//   A: either `m` row pointers per K segment ("rows" mode: element k of row i
//      in segment s is a_rows[s * mr + i][k]; lets convolutions read the image
//      in place), or one strided panel ("panel" mode: element k of row i is
//      a_panel[k * a_stride + i]; a transposed matrix read in place),
//   B: a packed panel of K rows, each nr floats (zero padded past n),
// and merges it into C through the epilogue described in Epilogue (gemm.h).
// A single-column C (n == 1, rows mode) uses a dot-product kernel instead:
// B is then one contiguous K vector, and vectors run along K.
#pragma once

#include <cstddef>

#include "isa.h"

namespace ganfleet {

struct KernelArgs {
  const float* const* a_rows;
  const float* a_panel;
  std::ptrdiff_t a_stride;
  int nseg;    // K = nseg * seglen; panel mode always has nseg == 1
  int seglen;
  const float* b;
  float* const* c;  // m row pointers, already at the tile's first column
  int n;            // valid columns, 1..nr
  float alpha;
  float beta;
  const float* bias;  // at the tile's first column, or nullptr
  bool first;         // first K block: C = alpha*acc + beta*C (C unread if beta == 0)
  bool last;          // last K block: add bias, apply ReLU
  bool relu;
};

using KernelFn = void (*)(const KernelArgs&);

constexpr int kMaxMr = 16;
constexpr int kMaxVecs = 4;

struct KernelSet {
  int mr;  // rows per tile
  int nr;  // columns per packed B panel
  int vl;  // floats per vector register
  int kc;  // target K block (B panel rows kept hot in L1/L2)
  // Indexed [m - 1][ceil(n / vl) - 1]: edge tiles get exact-size kernels
  // whose per-element arithmetic equals the full tile's.
  KernelFn rows[kMaxMr][kMaxVecs];
  KernelFn panel[kMaxMr][kMaxVecs];
  KernelFn dot[kMaxMr];  // [m - 1]
};

// The epilogue of one element, for kernels that finish in scalar code;
// bias points at this element's column (or is nullptr).
static inline void StoreScalar(const KernelArgs& p, float acc, float* c, const float* bias) {
  float r = p.first ? acc * p.alpha : *c + acc * p.alpha;
  if (p.first && p.beta != 0.0f) r += p.beta * *c;
  if (p.last) {
    if (bias != nullptr) r += *bias;
    if (p.relu && r < 0.0f) r = 0.0f;  // NaN and -0 pass, as in the vector paths
  }
  *c = r;
}

const KernelSet& PortableKernels();
const KernelSet& Avx2Kernels();    // only valid when GF_X86_SIMD
const KernelSet& Avx512Kernels();  // only valid when GF_X86_SIMD
const KernelSet& KernelsFor(Isa isa);

}  // namespace ganfleet
