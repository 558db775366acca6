#include "napi_util.h"

#include <cmath>
#include <string>

namespace ganfleet {
namespace {

bool Fail(napi_env env, const char* name, const char* what, bool range) {
  const std::string msg = std::string(name) + ": " + what;
  if (range) {
    napi_throw_range_error(env, nullptr, msg.c_str());
  } else {
    napi_throw_type_error(env, nullptr, msg.c_str());
  }
  return false;
}

}  // namespace

bool ReadArgs(napi_env env, napi_callback_info info, std::size_t expected, CallArgs* out) {
  out->count = kMaxArgs;
  if (napi_get_cb_info(env, info, &out->count, out->v, nullptr, &out->data) != napi_ok) return false;
  if (out->count < expected) return Fail(env, "arguments", ("expected " + std::to_string(expected)).c_str(), false);
  return true;
}

napi_valuetype TypeOf(napi_env env, napi_value v) {
  napi_valuetype type = napi_undefined;
  napi_typeof(env, v, &type);
  return type;
}

bool GetInt(napi_env env, napi_value v, const char* name, long long min, long long max, long long* out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return Fail(env, name, "expected a number", false);
  if (!(d == std::floor(d)) || d < static_cast<double>(min) || d > static_cast<double>(max))
    return Fail(env, name, ("expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]").c_str(), true);
  *out = static_cast<long long>(d);
  return true;
}

bool GetInt(napi_env env, napi_value v, const char* name, int min, int* out) {
  long long x;
  if (!GetInt(env, v, name, min, 0x7fffffffLL, &x)) return false;
  *out = static_cast<int>(x);
  return true;
}

bool GetDouble(napi_env env, napi_value v, const char* name, double* out) {
  if (napi_get_value_double(env, v, out) != napi_ok) return Fail(env, name, "expected a number", false);
  return true;
}

bool GetFloat(napi_env env, napi_value v, const char* name, float* out) {
  double d;
  if (!GetDouble(env, v, name, &d)) return false;
  *out = static_cast<float>(d);
  return true;
}

bool GetBool(napi_env env, napi_value v, const char* name, bool* out) {
  if (napi_get_value_bool(env, v, out) != napi_ok) return Fail(env, name, "expected a boolean", false);
  return true;
}

bool GetF32(napi_env env, napi_value array, napi_value offset, const char* name, long long extent, bool optional, float** data) {
  *data = nullptr;
  napi_valuetype vt;
  if (napi_typeof(env, array, &vt) != napi_ok) return false;
  if (optional && (vt == napi_null || vt == napi_undefined)) return true;
  bool is_typed = false;
  napi_is_typedarray(env, array, &is_typed);
  napi_typedarray_type type;
  std::size_t length = 0;
  void* base = nullptr;
  if (!is_typed || napi_get_typedarray_info(env, array, &type, &length, &base, nullptr, nullptr) != napi_ok ||
      type != napi_float32_array)
    return Fail(env, name, "expected a Float32Array", false);
  long long off;
  if (!GetInt(env, offset, name, 0, static_cast<long long>(length), &off)) return false;
  if (extent > static_cast<long long>(length) - off)
    return Fail(env, name, ("needs " + std::to_string(extent) + " elements from offset " + std::to_string(off) + ", view has " + std::to_string(length)).c_str(), true);
  // napi_get_typedarray_info already applies the view's byteOffset.
  *data = static_cast<float*>(base) + off;
  return true;
}

bool CheckDisjoint(napi_env env, const float* a, long long na, const float* b, long long nb, const char* what) {
  if (a == nullptr || b == nullptr || na == 0 || nb == 0 || a + na <= b || b + nb <= a) return true;
  return Fail(env, what, "output overlaps an input", true);
}

napi_value Undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

}  // namespace ganfleet
