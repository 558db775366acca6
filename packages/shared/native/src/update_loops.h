// The coordinator's per-round loops over every parameter: Adam, the
// generator's moving average, the mean of two contributions and the checked
// float64 sum of any number. Each is the same sequence of IEEE double
// operations as its JavaScript twin (packages/shared/src/model/updateLoops.ts),
// so results match it bit for bit on every path; the AVX2 path only does four
// values at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "isa.h"

namespace ganfleet {

// One term of a sum: w * x[i], x float32 or float64.
struct SumTerm {
  const void* x;
  bool f64;
  double w;
};

struct AdamConstants {
  double b1, b2, eps, rate, inv_c2;
};

// Values [0, n) of one parameter: m, v and p updated in place from g; with
// `copy`, p's new values are also written there (the update's outgoing body).
void AdamUpdate(Isa isa, const AdamConstants& c, float* p, const float* g, float* m, float* v, std::size_t n, float* copy = nullptr);

// avg = beta * avg + (1 - beta) * p over [0, n).
void EmaFold(Isa isa, double beta, float* avg, const float* p, std::size_t n);

// out = float((a.w * a.x + b.w * b.x) / total) over [0, n); returns the
// largest magnitude written, NaN if any value was NaN.
double MeanOfTwo(Isa isa, float* out, const SumTerm& a, const SumTerm& b, double total, std::size_t n);

// Σ x[i]² in four running sums (x[i] goes to sum i % 4; the tail's to the
// first), added as (s0 + s1) + (s2 + s3); and the largest |x[i]| (NaN if any
// is NaN). With `into` (n values of x's type) each value is copied there as
// it is read: what was summed is what was copied, however x changes meanwhile
// (memory another process writes).
struct Squares {
  double sum, worst;
};
Squares SumOfSquares(Isa isa, const SumTerm& x, std::size_t n, void* into = nullptr);

// s[i] = w0 x0[i] + w1 x1[i] + ... added in that order in float64, every
// addition checked with TwoSum; the indices where one was not exact go to
// `redo`. Without `out` the sums go to `acc`; with it, float(s / total) goes
// to `out` and the largest magnitude written (NaN if any is NaN) is returned.
double SumTerms(Isa isa, const SumTerm* terms, std::size_t k, std::size_t n, double* acc, float* out, double total, std::vector<uint32_t>* redo);

}  // namespace ganfleet
