// AVX2+FMA micro-kernel: 6 x 16 tile, 12 ymm accumulators (of 16 registers),
// enough independent chains for two 256-bit FMA pipes with 4-cycle latency.
#include "config.h"
#include "kernel.h"
#include "kernel_table.h"

#if GF_X86_SIMD
#include <immintrin.h>

#include <cstdint>

#define GF_TARGET __attribute__((target("avx2,fma")))
#define GF_INLINE __attribute__((always_inline)) inline
// Fully unrolled tile loops keep the accumulators in registers (a rolled
// loop makes GCC keep a stack copy of them updated on every k).
#define GF_UNROLL _Pragma("GCC unroll 16")

namespace ganfleet {
namespace {

constexpr int kMr = 6;
constexpr int kVecs = 2;
constexpr int kVl = 8;
constexpr int kNr = kVecs * kVl;
constexpr int kKc = 256;

// kLaneMask + 8 - n: the first n lanes set.
alignas(64) constexpr int32_t kLaneMask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

template <int M, int NV>
GF_TARGET GF_INLINE void Fma(__m256 (&acc)[M][NV], const float* const (&a)[M], int k, const float* b) {
  __m256 bv[NV];
  GF_UNROLL
  for (int v = 0; v < NV; ++v) bv[v] = _mm256_load_ps(b + v * kVl);
  GF_UNROLL
  for (int i = 0; i < M; ++i) {
    const __m256 ai = _mm256_broadcast_ss(a[i] + k);
    GF_UNROLL
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
  }
}

template <int M, int NV>
GF_TARGET GF_INLINE void Store(const KernelArgs& p, __m256 (&acc)[M][NV]) {
  const __m256i tail = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kLaneMask + 8 - (p.n - (NV - 1) * kVl)));
  const __m256i full = _mm256_set1_epi32(-1);
  const __m256 alpha = _mm256_set1_ps(p.alpha);
  const __m256 beta = _mm256_set1_ps(p.beta);
  const __m256 zero = _mm256_setzero_ps();
  GF_UNROLL
  for (int i = 0; i < M; ++i) {
    float* c = p.c[i];
    GF_UNROLL
    for (int v = 0; v < NV; ++v) {
      const __m256i mask = v == NV - 1 ? tail : full;
      __m256 r;
      if (p.first) {
        r = _mm256_mul_ps(acc[i][v], alpha);
        if (p.beta != 0.0f) r = _mm256_fmadd_ps(beta, _mm256_maskload_ps(c + v * kVl, mask), r);
      } else {
        r = _mm256_fmadd_ps(acc[i][v], alpha, _mm256_maskload_ps(c + v * kVl, mask));
      }
      if (p.last) {
        if (p.bias != nullptr) r = _mm256_add_ps(r, _mm256_maskload_ps(p.bias + v * kVl, mask));
        // Only r < 0 becomes 0: NaN and -0 pass, as in the other paths.
        if (p.relu) r = _mm256_blendv_ps(r, zero, _mm256_cmp_ps(r, zero, _CMP_LT_OQ));
      }
      _mm256_maskstore_ps(c + v * kVl, mask, r);
    }
  }
}

template <int M, int NV, bool kPanel>
struct Kernel {
  GF_TARGET static void Run(const KernelArgs& p) {
    __m256 acc[M][NV] = {};
    const float* b = p.b;
    if (kPanel) {
      const float* a = p.a_panel;
      for (int k = 0; k < p.seglen; ++k) {
        __m256 bv[NV];
        GF_UNROLL
        for (int v = 0; v < NV; ++v) bv[v] = _mm256_load_ps(b + v * kVl);
        GF_UNROLL
        for (int i = 0; i < M; ++i) {
          const __m256 ai = _mm256_broadcast_ss(a + i);
          GF_UNROLL
          for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += p.a_stride;
        b += kNr;
      }
    } else {
      for (int s = 0; s < p.nseg; ++s) {
        const float* a[M];
        GF_UNROLL
        for (int i = 0; i < M; ++i) a[i] = p.a_rows[s * kMr + i];
        for (int k = 0; k < p.seglen; ++k, b += kNr) Fma<M, NV>(acc, a, k, b);
      }
    }
    Store<M, NV>(p, acc);
  }
};

// n == 1: M dot products, vectors along K, one horizontal sum per row.
template <int M>
struct Dot {
  GF_TARGET static void Run(const KernelArgs& p) {
    __m256 acc[M] = {};
    const int full = p.seglen & ~(kVl - 1);
    const __m256i tail = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kLaneMask + 8 - (p.seglen - full)));
    const float* b = p.b;
    for (int s = 0; s < p.nseg; ++s, b += p.seglen) {
      const float* const* a = p.a_rows + s * kMr;
      for (int k = 0; k < full; k += kVl) {
        const __m256 bv = _mm256_loadu_ps(b + k);
        GF_UNROLL
        for (int i = 0; i < M; ++i) acc[i] = _mm256_fmadd_ps(_mm256_loadu_ps(a[i] + k), bv, acc[i]);
      }
      if (full != p.seglen) {
        const __m256 bv = _mm256_maskload_ps(b + full, tail);
        GF_UNROLL
        for (int i = 0; i < M; ++i) acc[i] = _mm256_fmadd_ps(_mm256_maskload_ps(a[i] + full, tail), bv, acc[i]);
      }
    }
    GF_UNROLL
    for (int i = 0; i < M; ++i) {
      const __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc[i]), _mm256_extractf128_ps(acc[i], 1));
      const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
      StoreScalar(p, _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q))), p.c[i], p.bias);
    }
  }
};

}  // namespace

const KernelSet& Avx2Kernels() {
  static const KernelSet ks = MakeKernelSet<Kernel, Dot, kMr, kVecs, kVl>(kKc);
  return ks;
}

}  // namespace ganfleet
#endif
