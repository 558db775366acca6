// Argument reading for the N-API entry points. Every Get* returns false after
// throwing a JS error, so callers just `return nullptr`.
#pragma once

#include <node_api.h>

#include <cstddef>

namespace ganfleet {

// Up to kMaxArgs positional arguments of one call, plus the instance pointer
// registered as the function's data.
constexpr std::size_t kMaxArgs = 32;
struct CallArgs {
  napi_value v[kMaxArgs];
  std::size_t count = kMaxArgs;
  void* data = nullptr;
};
bool ReadArgs(napi_env env, napi_callback_info info, std::size_t expected, CallArgs* out);

// The JavaScript type of `v`: napi_undefined for an argument not passed (ReadArgs fills those with undefined).
napi_valuetype TypeOf(napi_env env, napi_value v);

bool GetInt(napi_env env, napi_value v, const char* name, long long min, long long max, long long* out);
bool GetInt(napi_env env, napi_value v, const char* name, int min, int* out);
bool GetDouble(napi_env env, napi_value v, const char* name, double* out);
bool GetFloat(napi_env env, napi_value v, const char* name, float* out);
bool GetBool(napi_env env, napi_value v, const char* name, bool* out);

// A Float32Array region: `offset` (a JS number, elements) from the view's
// start, `extent` elements long, checked against the view's length.
// `optional` accepts null/undefined as "absent" (data == nullptr).
bool GetF32(napi_env env, napi_value array, napi_value offset, const char* name, long long extent, bool optional, float** data);

// Throws RangeError unless [a, a + na) and [b, b + nb) are disjoint: an
// output must not alias an input the kernel still reads.
bool CheckDisjoint(napi_env env, const float* a, long long na, const float* b, long long nb, const char* what);

napi_value Undefined(napi_env env);

}  // namespace ganfleet
