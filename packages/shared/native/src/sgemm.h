// Row-major single-precision GEMM on plain (strided) matrices.
#pragma once

#include <cstddef>

#include "gemm.h"

namespace ganfleet {

struct MatrixArgs {
  bool trans_a, trans_b;
  int m, n, k;
  const float* a;
  std::ptrdiff_t lda;  // op(A) is m x k; A is stored k x m when trans_a
  const float* b;
  std::ptrdiff_t ldb;  // op(B) is k x n; B is stored n x k when trans_b
  float* c;
  std::ptrdiff_t ldc;
};

// C = act(alpha * op(A) op(B) + beta * C + bias)
void Sgemm(const MatrixArgs& args, const Epilogue& ep, Exec& ex);

}  // namespace ganfleet
