// AVX-512F micro-kernel: 14 x 32 tile, 28 zmm accumulators. Zen 4 issues
// one 512-bit FMA per cycle (double-pumped), Zen 5 two; either way 28
// independent chains cover the 4-cycle latency. B costs two loads per k and
// A one broadcast per row.
#include "config.h"
#include "kernel.h"
#include "kernel_table.h"

#if GF_X86_SIMD
#include <immintrin.h>

// GCC 12 flags the deliberately undefined pass-through operand inside some
// AVX-512 intrinsics as uninitialised (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#define GF_TARGET __attribute__((target("avx512f,avx2,fma")))
#define GF_INLINE __attribute__((always_inline)) inline
// Fully unrolled tile loops keep the accumulators in registers (a rolled
// loop makes GCC keep a stack copy of them updated on every k).
#define GF_UNROLL _Pragma("GCC unroll 16")

namespace ganfleet {
namespace {

constexpr int kMr = 14;
constexpr int kVecs = 2;
constexpr int kVl = 16;
constexpr int kNr = kVecs * kVl;
constexpr int kKc = 256;

template <int M, int NV>
GF_TARGET GF_INLINE void Fma(__m512 (&acc)[M][NV], const float* const (&a)[M], int k, const float* b) {
  __m512 bv[NV];
  GF_UNROLL
  for (int v = 0; v < NV; ++v) bv[v] = _mm512_load_ps(b + v * kVl);
  GF_UNROLL
  for (int i = 0; i < M; ++i) {
    const __m512 ai = _mm512_set1_ps(a[i][k]);
    GF_UNROLL
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
  }
}

template <int M, int NV>
GF_TARGET GF_INLINE void Store(const KernelArgs& p, __m512 (&acc)[M][NV]) {
  const __mmask16 tail = static_cast<__mmask16>((1u << (p.n - (NV - 1) * kVl)) - 1u);
  const __m512 alpha = _mm512_set1_ps(p.alpha);
  const __m512 beta = _mm512_set1_ps(p.beta);
  const __m512 zero = _mm512_setzero_ps();
  GF_UNROLL
  for (int i = 0; i < M; ++i) {
    float* c = p.c[i];
    GF_UNROLL
    for (int v = 0; v < NV; ++v) {
      const __mmask16 mask = v == NV - 1 ? tail : static_cast<__mmask16>(0xFFFF);
      __m512 r;
      if (p.first) {
        r = _mm512_mul_ps(acc[i][v], alpha);
        if (p.beta != 0.0f) r = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(mask, c + v * kVl), r);
      } else {
        r = _mm512_fmadd_ps(acc[i][v], alpha, _mm512_maskz_loadu_ps(mask, c + v * kVl));
      }
      if (p.last) {
        if (p.bias != nullptr) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mask, p.bias + v * kVl));
        // Only r < 0 becomes 0: NaN and -0 pass, as in the other paths.
        if (p.relu) r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(r, zero, _CMP_LT_OQ), r, zero);
      }
      _mm512_mask_storeu_ps(c + v * kVl, mask, r);
    }
  }
}

template <int M, int NV, bool kPanel>
struct Kernel {
  GF_TARGET static void Run(const KernelArgs& p) {
    __m512 acc[M][NV] = {};
    const float* b = p.b;
    if (kPanel) {
      const float* a = p.a_panel;
      for (int k = 0; k < p.seglen; ++k) {
        __m512 bv[NV];
        GF_UNROLL
        for (int v = 0; v < NV; ++v) bv[v] = _mm512_load_ps(b + v * kVl);
        GF_UNROLL
        for (int i = 0; i < M; ++i) {
          const __m512 ai = _mm512_set1_ps(a[i]);
          GF_UNROLL
          for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
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
    __m512 acc[M] = {};
    const int full = p.seglen & ~(kVl - 1);
    const __mmask16 tail = static_cast<__mmask16>((1u << (p.seglen - full)) - 1u);
    const float* b = p.b;
    for (int s = 0; s < p.nseg; ++s, b += p.seglen) {
      const float* const* a = p.a_rows + s * kMr;
      for (int k = 0; k < full; k += kVl) {
        const __m512 bv = _mm512_loadu_ps(b + k);
        GF_UNROLL
        for (int i = 0; i < M; ++i) acc[i] = _mm512_fmadd_ps(_mm512_loadu_ps(a[i] + k), bv, acc[i]);
      }
      if (tail != 0) {
        const __m512 bv = _mm512_maskz_loadu_ps(tail, b + full);
        GF_UNROLL
        for (int i = 0; i < M; ++i) acc[i] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, a[i] + full), bv, acc[i]);
      }
    }
    GF_UNROLL
    for (int i = 0; i < M; ++i) StoreScalar(p, _mm512_reduce_add_ps(acc[i]), p.c[i], p.bias);
  }
};

}  // namespace

const KernelSet& Avx512Kernels() {
  static const KernelSet ks = MakeKernelSet<Kernel, Dot, kMr, kVecs, kVl>(kKc);
  return ks;
}

}  // namespace ganfleet
#endif
