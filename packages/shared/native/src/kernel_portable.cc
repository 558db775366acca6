// Portable C++ micro-kernel (4 x 8 tile): the fallback for non-x86 CPUs and
// x86 CPUs without AVX2+FMA; the compiler vectorises it for the baseline ISA.
#include "kernel.h"
#include "kernel_table.h"

namespace ganfleet {
namespace {

constexpr int kMr = 4;
constexpr int kNr = 8;
constexpr int kKc = 256;

template <int M, int NV, bool kPanel>
struct Kernel {
  static void Run(const KernelArgs& p) {
    float acc[M][kNr] = {};
    const float* b = p.b;
    if (kPanel) {
      const float* a = p.a_panel;
      for (int k = 0; k < p.seglen; ++k, a += p.a_stride, b += kNr)
        for (int i = 0; i < M; ++i)
          for (int j = 0; j < kNr; ++j) acc[i][j] += a[i] * b[j];
    } else {
      for (int s = 0; s < p.nseg; ++s) {
        const float* a[M];
        for (int i = 0; i < M; ++i) a[i] = p.a_rows[s * kMr + i];
        for (int k = 0; k < p.seglen; ++k, b += kNr)
          for (int i = 0; i < M; ++i)
            for (int j = 0; j < kNr; ++j) acc[i][j] += a[i][k] * b[j];
      }
    }
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < p.n; ++j) StoreScalar(p, acc[i][j], p.c[i] + j, p.bias != nullptr ? p.bias + j : nullptr);
  }
};

// n == 1: M dot products along K.
template <int M>
struct Dot {
  static void Run(const KernelArgs& p) {
    float acc[M] = {};
    const float* b = p.b;
    for (int s = 0; s < p.nseg; ++s, b += p.seglen)
      for (int i = 0; i < M; ++i) {
        const float* a = p.a_rows[s * kMr + i];
        for (int k = 0; k < p.seglen; ++k) acc[i] += a[k] * b[k];
      }
    for (int i = 0; i < M; ++i) StoreScalar(p, acc[i], p.c[i], p.bias);
  }
};

}  // namespace

const KernelSet& PortableKernels() {
  static const KernelSet ks = MakeKernelSet<Kernel, Dot, kMr, 1, kNr>(kKc);
  return ks;
}

}  // namespace ganfleet
