// sgemm(transA, transB, m, n, k, alpha, a, aOffset, lda, b, bOffset, ldb,
//       beta, c, cOffset, ldc, bias, biasOffset, relu)
#include <algorithm>
#include <new>

#include "api.h"
#include "instance.h"
#include "napi_util.h"
#include "sgemm.h"

namespace ganfleet {
namespace {

constexpr long long kMaxLd = 1LL << 40;

// Elements spanned by a rows x cols row-major matrix with leading dimension ld.
long long Extent(long long rows, long long cols, long long ld) { return rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols; }

bool GetLd(napi_env env, napi_value v, const char* name, long long cols, long long* out) {
  return GetInt(env, v, name, std::max(1LL, cols), kMaxLd, out);
}

}  // namespace

napi_value ApiSgemm(napi_env env, napi_callback_info info) {
  CallArgs args;
  if (!ReadArgs(env, info, 19, &args)) return nullptr;
  const napi_value* v = args.v;
  MatrixArgs x{};
  Epilogue ep;
  long long lda, ldb, ldc;
  if (!GetBool(env, v[0], "transA", &x.trans_a) || !GetBool(env, v[1], "transB", &x.trans_b) || !GetInt(env, v[2], "m", 0, &x.m) ||
      !GetInt(env, v[3], "n", 0, &x.n) || !GetInt(env, v[4], "k", 0, &x.k) || !GetFloat(env, v[5], "alpha", &ep.alpha) ||
      !GetFloat(env, v[12], "beta", &ep.beta) || !GetBool(env, v[18], "relu", &ep.relu))
    return nullptr;
  const long long a_rows = x.trans_a ? x.k : x.m, a_cols = x.trans_a ? x.m : x.k;
  const long long b_rows = x.trans_b ? x.n : x.k, b_cols = x.trans_b ? x.k : x.n;
  float *a, *b, *c, *bias;
  if (!GetLd(env, v[8], "lda", a_cols, &lda) || !GetLd(env, v[11], "ldb", b_cols, &ldb) || !GetLd(env, v[15], "ldc", x.n, &ldc) ||
      !GetF32(env, v[6], v[7], "a", Extent(a_rows, a_cols, lda), false, &a) ||
      !GetF32(env, v[9], v[10], "b", Extent(b_rows, b_cols, ldb), false, &b) ||
      !GetF32(env, v[13], v[14], "c", Extent(x.m, x.n, ldc), false, &c) || !GetF32(env, v[16], v[17], "bias", x.n, true, &bias))
    return nullptr;
  const long long c_extent = Extent(x.m, x.n, ldc);
  if (!CheckDisjoint(env, c, c_extent, a, Extent(a_rows, a_cols, lda), "c") ||
      !CheckDisjoint(env, c, c_extent, b, Extent(b_rows, b_cols, ldb), "c") || !CheckDisjoint(env, c, c_extent, bias, x.n, "c"))
    return nullptr;
  x.a = a;
  x.b = b;
  x.c = c;
  x.lda = lda;
  x.ldb = ldb;
  x.ldc = ldc;
  ep.bias = bias;
  try {
    Exec ex = static_cast<Instance*>(args.data)->MakeExec();
    Sgemm(x, ep, ex);
  } catch (const std::bad_alloc&) {
    napi_throw_error(env, nullptr, "sgemm: out of memory");
    return nullptr;
  }
  return Undefined(env);
}

}  // namespace ganfleet
