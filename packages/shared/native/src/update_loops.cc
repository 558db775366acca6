// See update_loops.h. No fused multiply-add anywhere: JavaScript rounds every
// product and sum on its own. The x86 paths are compiled without FMA (the
// AVX2 one is explicit intrinsics); elsewhere (aarch64 contracts by default)
// the pragma forbids it for this file only, as a build-wide flag would change
// the GEMM kernels' results.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "update_loops.h"

#include <algorithm>
#include <cmath>

#include "config.h"

#if GF_X86_SIMD
#include <immintrin.h>
#define GF_TARGET __attribute__((target("avx2")))
#endif

namespace ganfleet {
namespace {

// The largest magnitude written so far, and whether a NaN was.
struct Worst {
  double max = 0;
  bool nan = false;
  void Add(double g) {
    const double a = std::fabs(g);
    if (a > max) max = a;
    if (a != a) nan = true;
  }
  double Result() const { return nan ? NAN : max; }
};

// A block of SumTerms' coordinates: its sums and flags stay in L1 while every term is added.
constexpr std::size_t kSumBlock = 512;
struct SumBlock {
  double s[kSumBlock];
  // All bits set where an addition was not exact (the AVX2 path ORs double-lane compare masks in).
  uint64_t inexact[kSumBlock];
};

// ---- Scalar loops, from `from` to n: the portable path, and the AVX2 path's tails.

void AdamScalar(const AdamConstants& c, float* p, const float* g, float* m, float* v, float* copy, std::size_t from, std::size_t n) {
  const double a1 = 1 - c.b1, a2 = 1 - c.b2;
  for (std::size_t i = from; i < n; i++) {
    const double gi = g[i];
    const double mi = c.b1 * m[i] + a1 * gi;
    const double vi = c.b2 * v[i] + a2 * gi * gi;
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(vi);
    p[i] = static_cast<float>(p[i] - (c.rate * mi) / (std::sqrt(vi * c.inv_c2) + c.eps));
    if (copy != nullptr) copy[i] = p[i];
  }
}

void EmaScalar(double beta, double alpha, float* avg, const float* p, std::size_t from, std::size_t n) {
  for (std::size_t i = from; i < n; i++) avg[i] = static_cast<float>(beta * avg[i] + alpha * p[i]);
}

template <typename T0, typename T1>
void MeanScalar(float* out, const T0* x0, double w0, const T1* x1, double w1, double total, std::size_t from, std::size_t n, Worst* worst) {
  for (std::size_t i = from; i < n; i++) {
    const float g = static_cast<float>((w0 * x0[i] + w1 * x1[i]) / total);
    out[i] = g;
    worst->Add(g);
  }
}

// x[i] read once: copied to `into` (when given) from the value that is summed.
template <typename T>
double Take(const T* x, T* into, std::size_t i) {
  const T v = x[i];
  if (into != nullptr) into[i] = v;
  return v;
}

// From `from` (a multiple of 4) on, adding to the AVX2 loop's running sums.
template <typename T>
Squares SquaresScalar(const T* x, T* into, std::size_t from, std::size_t n, double s[4], Worst* worst) {
  const std::size_t whole = n - n % 4;
  for (std::size_t i = from; i < whole; i += 4)
    for (int k = 0; k < 4; k++) {
      const double v = Take(x, into, i + k);
      s[k] = s[k] + v * v;
      worst->Add(v);
    }
  for (std::size_t i = whole; i < n; i++) {
    const double v = Take(x, into, i);
    s[0] = s[0] + v * v;
    worst->Add(v);
  }
  return Squares{s[0] + s[1] + (s[2] + s[3]), worst->Result()};
}

template <typename T>
void FirstTerm(const T* x, double w, SumBlock* b, std::size_t n) {
  for (std::size_t i = 0; i < n; i++) {
    b->s[i] = w * x[i];
    b->inexact[i] = 0;
  }
}

// s += w x, flagging each coordinate whose addition was not exact (Knuth's TwoSum error is not 0).
template <typename T>
void AddTermScalar(const T* x, double w, SumBlock* blk, std::size_t from, std::size_t n) {
  for (std::size_t i = from; i < n; i++) {
    const double s = blk->s[i];
    const double p = w * x[i];
    const double u = s + p;
    const double b = u - s;
    if ((s - (u - b)) + (p - b) != 0) blk->inexact[i] = ~uint64_t{0};
    blk->s[i] = u;
  }
}

void WriteMeanScalar(const SumBlock& b, float* out, double total, std::size_t from, std::size_t n, Worst* worst) {
  for (std::size_t i = from; i < n; i++) {
    const float g = static_cast<float>(b.s[i] / total);
    out[i] = g;
    worst->Add(g);
  }
}

#if GF_X86_SIMD
// ---- AVX2: four values per step, float -> double lanes, the scalar loop's
// operations in the same order, double -> float (round to nearest, as a scalar
// cast). Each returns how many values it did; the scalar loop does the rest.

GF_TARGET __m256d Load4(const float* x) { return _mm256_cvtps_pd(_mm_loadu_ps(x)); }
GF_TARGET __m256d Load4(const double* x) { return _mm256_loadu_pd(x); }

// Load4 that also copies the four values to `into` (when given) from the register it returns.
GF_TARGET __m256d Take4(const float* x, float* into) {
  const __m128 f = _mm_loadu_ps(x);
  if (into != nullptr) _mm_storeu_ps(into, f);
  return _mm256_cvtps_pd(f);
}
GF_TARGET __m256d Take4(const double* x, double* into) {
  const __m256d d = _mm256_loadu_pd(x);
  if (into != nullptr) _mm256_storeu_pd(into, d);
  return d;
}

// Worst over four lanes at a time.
struct Worst4 {
  __m128 top, unordered;
  GF_TARGET Worst4() : top(_mm_setzero_ps()), unordered(_mm_setzero_ps()) {}
  GF_TARGET void Add(__m128 g) {
    const __m128 a = _mm_and_ps(g, _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff)));
    unordered = _mm_or_ps(unordered, _mm_cmpunord_ps(a, a));
    top = _mm_max_ps(top, a);
  }
  GF_TARGET void Into(Worst* worst) const {
    alignas(16) float lanes[4];
    _mm_store_ps(lanes, top);
    for (float a : lanes) worst->Add(a);
    if (_mm_movemask_ps(unordered) != 0) worst->nan = true;
  }
};

GF_TARGET std::size_t AdamAvx2(const AdamConstants& c, float* p, const float* g, float* m, float* v, float* copy, std::size_t n) {
  const __m256d b1 = _mm256_set1_pd(c.b1), b2 = _mm256_set1_pd(c.b2), a1 = _mm256_set1_pd(1 - c.b1), a2 = _mm256_set1_pd(1 - c.b2);
  const __m256d eps = _mm256_set1_pd(c.eps), rate = _mm256_set1_pd(c.rate), inv_c2 = _mm256_set1_pd(c.inv_c2);
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256d gi = Load4(g + i);
    const __m256d mi = _mm256_add_pd(_mm256_mul_pd(b1, Load4(m + i)), _mm256_mul_pd(a1, gi));
    const __m256d vi = _mm256_add_pd(_mm256_mul_pd(b2, Load4(v + i)), _mm256_mul_pd(_mm256_mul_pd(a2, gi), gi));
    _mm_storeu_ps(m + i, _mm256_cvtpd_ps(mi));
    _mm_storeu_ps(v + i, _mm256_cvtpd_ps(vi));
    const __m256d denom = _mm256_add_pd(_mm256_sqrt_pd(_mm256_mul_pd(vi, inv_c2)), eps);
    const __m128 pi = _mm256_cvtpd_ps(_mm256_sub_pd(Load4(p + i), _mm256_div_pd(_mm256_mul_pd(rate, mi), denom)));
    _mm_storeu_ps(p + i, pi);
    if (copy != nullptr) _mm_storeu_ps(copy + i, pi);
  }
  return i;
}

GF_TARGET std::size_t EmaAvx2(double beta, double alpha, float* avg, const float* p, std::size_t n) {
  const __m256d b = _mm256_set1_pd(beta), a = _mm256_set1_pd(alpha);
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) _mm_storeu_ps(avg + i, _mm256_cvtpd_ps(_mm256_add_pd(_mm256_mul_pd(b, Load4(avg + i)), _mm256_mul_pd(a, Load4(p + i)))));
  return i;
}

template <typename T0, typename T1>
GF_TARGET std::size_t MeanAvx2(float* out, const T0* x0, double w0, const T1* x1, double w1, double total, std::size_t n, Worst* worst) {
  const __m256d v0 = _mm256_set1_pd(w0), v1 = _mm256_set1_pd(w1), t = _mm256_set1_pd(total);
  Worst4 w4;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m128 g = _mm256_cvtpd_ps(_mm256_div_pd(_mm256_add_pd(_mm256_mul_pd(v0, Load4(x0 + i)), _mm256_mul_pd(v1, Load4(x1 + i))), t));
    _mm_storeu_ps(out + i, g);
    w4.Add(g);
  }
  w4.Into(worst);
  return i;
}

template <typename T>
GF_TARGET std::size_t SquaresAvx2(const T* x, T* into, std::size_t n, double s[4], Worst* worst) {
  const __m256d abs_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffff));
  __m256d sums = _mm256_setzero_pd(), top = _mm256_setzero_pd(), unordered = _mm256_setzero_pd();
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256d v = Take4(x + i, into == nullptr ? nullptr : into + i);
    sums = _mm256_add_pd(sums, _mm256_mul_pd(v, v));
    const __m256d a = _mm256_and_pd(v, abs_mask);
    unordered = _mm256_or_pd(unordered, _mm256_cmp_pd(a, a, _CMP_UNORD_Q));
    top = _mm256_max_pd(top, a);
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, top);
  for (double a : lanes) worst->Add(a);
  if (_mm256_movemask_pd(unordered) != 0) worst->nan = true;
  _mm256_storeu_pd(s, sums);
  return i;
}

template <typename T>
GF_TARGET std::size_t AddTermAvx2(const T* x, double w, SumBlock* blk, std::size_t n) {
  const __m256d wv = _mm256_set1_pd(w), zero = _mm256_setzero_pd();
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256d s = _mm256_loadu_pd(blk->s + i);
    const __m256d p = _mm256_mul_pd(wv, Load4(x + i));
    const __m256d u = _mm256_add_pd(s, p);
    const __m256d b = _mm256_sub_pd(u, s);
    const __m256d e = _mm256_add_pd(_mm256_sub_pd(s, _mm256_sub_pd(u, b)), _mm256_sub_pd(p, b));
    double* flags = reinterpret_cast<double*>(blk->inexact + i);
    _mm256_storeu_pd(flags, _mm256_or_pd(_mm256_loadu_pd(flags), _mm256_cmp_pd(e, zero, _CMP_NEQ_UQ)));
    _mm256_storeu_pd(blk->s + i, u);
  }
  return i;
}

GF_TARGET std::size_t WriteMeanAvx2(const SumBlock& b, float* out, double total, std::size_t n, Worst* worst) {
  const __m256d t = _mm256_set1_pd(total);
  Worst4 w4;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m128 g = _mm256_cvtpd_ps(_mm256_div_pd(_mm256_loadu_pd(b.s + i), t));
    _mm_storeu_ps(out + i, g);
    w4.Add(g);
  }
  w4.Into(worst);
  return i;
}
#endif

// ---- Dispatch: the AVX2 loop where the path allows, then the scalar one.

template <typename T>
Squares SquaresOf(Isa isa, const T* x, T* into, std::size_t n) {
  double s[4] = {0, 0, 0, 0};
  Worst worst;
  std::size_t done = 0;
#if GF_X86_SIMD
  if (isa >= Isa::kAvx2) done = SquaresAvx2(x, into, n, s, &worst);
#endif
  return SquaresScalar(x, into, done, n, s, &worst);
}

template <typename T0, typename T1>
void Mean(Isa isa, float* out, const T0* x0, double w0, const T1* x1, double w1, double total, std::size_t n, Worst* worst) {
  std::size_t done = 0;
#if GF_X86_SIMD
  if (isa >= Isa::kAvx2) done = MeanAvx2(out, x0, w0, x1, w1, total, n, worst);
#endif
  MeanScalar(out, x0, w0, x1, w1, total, done, n, worst);
}

template <typename T0>
void MeanWith(Isa isa, float* out, const T0* x0, double w0, const SumTerm& b, double total, std::size_t n, Worst* worst) {
  if (b.f64) Mean(isa, out, x0, w0, static_cast<const double*>(b.x), b.w, total, n, worst);
  else Mean(isa, out, x0, w0, static_cast<const float*>(b.x), b.w, total, n, worst);
}

template <typename T>
void AddTerm(Isa isa, const T* x, double w, SumBlock* blk, std::size_t n) {
  std::size_t done = 0;
#if GF_X86_SIMD
  if (isa >= Isa::kAvx2) done = AddTermAvx2(x, w, blk, n);
#endif
  AddTermScalar(x, w, blk, done, n);
}

void WriteMean(Isa isa, const SumBlock& b, float* out, double total, std::size_t n, Worst* worst) {
  std::size_t done = 0;
#if GF_X86_SIMD
  if (isa >= Isa::kAvx2) done = WriteMeanAvx2(b, out, total, n, worst);
#endif
  WriteMeanScalar(b, out, total, done, n, worst);
}

}  // namespace

void AdamUpdate(Isa isa, const AdamConstants& c, float* p, const float* g, float* m, float* v, std::size_t n, float* copy) {
  std::size_t done = 0;
#if GF_X86_SIMD
  if (isa >= Isa::kAvx2) done = AdamAvx2(c, p, g, m, v, copy, n);
#endif
  AdamScalar(c, p, g, m, v, copy, done, n);
}

void EmaFold(Isa isa, double beta, float* avg, const float* p, std::size_t n) {
  const double alpha = 1 - beta;
  std::size_t done = 0;
#if GF_X86_SIMD
  if (isa >= Isa::kAvx2) done = EmaAvx2(beta, alpha, avg, p, n);
#endif
  EmaScalar(beta, alpha, avg, p, done, n);
}

double MeanOfTwo(Isa isa, float* out, const SumTerm& a, const SumTerm& b, double total, std::size_t n) {
  Worst worst;
  if (a.f64) MeanWith(isa, out, static_cast<const double*>(a.x), a.w, b, total, n, &worst);
  else MeanWith(isa, out, static_cast<const float*>(a.x), a.w, b, total, n, &worst);
  return worst.Result();
}

Squares SumOfSquares(Isa isa, const SumTerm& x, std::size_t n, void* into) {
  return x.f64 ? SquaresOf(isa, static_cast<const double*>(x.x), static_cast<double*>(into), n)
               : SquaresOf(isa, static_cast<const float*>(x.x), static_cast<float*>(into), n);
}

double SumTerms(Isa isa, const SumTerm* terms, std::size_t k, std::size_t n, double* acc, float* out, double total, std::vector<uint32_t>* redo) {
  SumBlock blk;
  Worst worst;
  for (std::size_t start = 0; start < n; start += kSumBlock) {
    const std::size_t len = std::min(kSumBlock, n - start);
    const SumTerm& first = terms[0];
    if (first.f64) FirstTerm(static_cast<const double*>(first.x) + start, first.w, &blk, len);
    else FirstTerm(static_cast<const float*>(first.x) + start, first.w, &blk, len);
    for (std::size_t j = 1; j < k; j++) {
      const SumTerm& t = terms[j];
      if (t.f64) AddTerm(isa, static_cast<const double*>(t.x) + start, t.w, &blk, len);
      else AddTerm(isa, static_cast<const float*>(t.x) + start, t.w, &blk, len);
    }
    if (out == nullptr) std::copy(blk.s, blk.s + len, acc + start);
    else WriteMean(isa, blk, out + start, total, len, &worst);
    for (std::size_t i = 0; i < len; i++)
      if (blk.inexact[i] != 0) redo->push_back(static_cast<uint32_t>(start + i));
  }
  return worst.Result();
}

}  // namespace ganfleet
