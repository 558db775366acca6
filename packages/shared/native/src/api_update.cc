// adamUpdate(p, g, m, v, from, to, beta1, beta2, epsilon, rate, invC2, copy?)
// emaFold(avg, p, from, to, beta)
// meanOfTwo(out, x0, w0, x1, w1, total) -> largest |out[i]| (NaN if any is)
// sumTerms(xs, ws, acc, out, total) -> { worst, redo }
// sumOfSquares(x, into?) -> { squares, worst } (x copied into `into` in the same pass)
#include <cmath>
#include <string>
#include <vector>

#include "api.h"
#include "instance.h"
#include "napi_util.h"
#include "update_loops.h"

namespace ganfleet {
namespace {

constexpr long long kMaxLength = 1LL << 40;

// A whole Float32Array or Float64Array.
struct FloatArray {
  void* data = nullptr;
  long long length = 0;
  bool f64 = false;
};

// Whether `value` is a Float32Array or Float64Array (then `out` describes it); throws nothing.
bool FloatArrayOf(napi_env env, napi_value value, FloatArray* out) {
  bool typed = false;
  napi_typedarray_type type;
  std::size_t length = 0;
  napi_is_typedarray(env, value, &typed);
  if (!typed || napi_get_typedarray_info(env, value, &type, &length, &out->data, nullptr, nullptr) != napi_ok ||
      (type != napi_float32_array && type != napi_float64_array))
    return false;
  out->length = static_cast<long long>(length);
  out->f64 = type == napi_float64_array;
  return true;
}

bool TypeError(napi_env env, const std::string& message) {
  napi_throw_type_error(env, nullptr, message.c_str());
  return false;
}

// The Float32Array `array` whole, with its length.
bool GetWhole(napi_env env, napi_value array, const char* name, float** data, long long* length) {
  FloatArray a;
  if (!FloatArrayOf(env, array, &a) || a.f64) return TypeError(env, std::string(name) + ": expected a Float32Array");
  *data = static_cast<float*>(a.data);
  *length = a.length;
  return true;
}

bool GetWholeF64(napi_env env, napi_value array, const char* name, double** data, long long* length) {
  FloatArray a;
  if (!FloatArrayOf(env, array, &a) || !a.f64) return TypeError(env, std::string(name) + ": expected a Float64Array");
  *data = static_cast<double*>(a.data);
  *length = a.length;
  return true;
}

// A term `weight` * `array` (a Float32Array or Float64Array of n values) that
// must not overlap the output [out, out + out_floats); out_floats defaults to n.
bool GetTerm(napi_env env, napi_value array, napi_value weight, const char* name, long long n, const float* out, SumTerm* term, long long out_floats = -1) {
  FloatArray a;
  if (!FloatArrayOf(env, array, &a) || a.length != n) {
    napi_throw_range_error(env, nullptr, (std::string(name) + ": expected a Float32Array or Float64Array of " + std::to_string(n) + " values").c_str());
    return false;
  }
  term->x = a.data;
  term->f64 = a.f64;
  if (!GetDouble(env, weight, name, &term->w)) return false;
  return CheckDisjoint(env, out, out_floats < 0 ? n : out_floats, static_cast<const float*>(a.data), a.f64 ? 2 * n : n, name);
}

Isa IsaOf(const CallArgs& args) { return static_cast<Instance*>(args.data)->isa; }

}  // namespace

napi_value ApiAdamUpdate(napi_env env, napi_callback_info info) {
  CallArgs args;
  if (!ReadArgs(env, info, 11, &args)) return nullptr;
  const napi_value* a = args.v;
  float *p, *g, *m, *v;
  long long np, ng, nm, nv, from, to;
  AdamConstants c;
  if (!GetWhole(env, a[0], "p", &p, &np) || !GetWhole(env, a[1], "g", &g, &ng) || !GetWhole(env, a[2], "m", &m, &nm) ||
      !GetWhole(env, a[3], "v", &v, &nv) || !GetInt(env, a[5], "to", 0, kMaxLength, &to) || !GetInt(env, a[4], "from", 0, to, &from) ||
      !GetDouble(env, a[6], "beta1", &c.b1) || !GetDouble(env, a[7], "beta2", &c.b2) || !GetDouble(env, a[8], "epsilon", &c.eps) ||
      !GetDouble(env, a[9], "rate", &c.rate) || !GetDouble(env, a[10], "invC2", &c.inv_c2))
    return nullptr;
  if (np != ng || nm != ng || nv != ng || to > ng) {
    napi_throw_range_error(env, nullptr, "adamUpdate: p, g, m and v must have one length, and `to` be within it");
    return nullptr;
  }
  if (!CheckDisjoint(env, p, np, g, ng, "p") || !CheckDisjoint(env, m, nm, g, ng, "m") || !CheckDisjoint(env, v, nv, g, ng, "v") ||
      !CheckDisjoint(env, p, np, m, nm, "p") || !CheckDisjoint(env, p, np, v, nv, "p") || !CheckDisjoint(env, m, nm, v, nv, "m"))
    return nullptr;
  // The optional 12th argument: a Float32Array of to - from values that receives p's new values.
  float* copy = nullptr;
  if (TypeOf(env, a[11]) != napi_undefined) {
    long long nc;
    if (!GetWhole(env, a[11], "copy", &copy, &nc)) return nullptr;
    if (nc != to - from) {
      napi_throw_range_error(env, nullptr, "adamUpdate: `copy` must hold to - from values");
      return nullptr;
    }
    if (!CheckDisjoint(env, copy, nc, p, np, "copy") || !CheckDisjoint(env, copy, nc, g, ng, "copy") || !CheckDisjoint(env, copy, nc, m, nm, "copy") ||
        !CheckDisjoint(env, copy, nc, v, nv, "copy"))
      return nullptr;
  }
  AdamUpdate(IsaOf(args), c, p + from, g + from, m + from, v + from, static_cast<std::size_t>(to - from), copy);
  return Undefined(env);
}

napi_value ApiEmaFold(napi_env env, napi_callback_info info) {
  CallArgs args;
  if (!ReadArgs(env, info, 5, &args)) return nullptr;
  const napi_value* a = args.v;
  float *avg, *p;
  long long navg, np, from, to;
  double beta;
  if (!GetWhole(env, a[0], "avg", &avg, &navg) || !GetWhole(env, a[1], "p", &p, &np) || !GetInt(env, a[3], "to", 0, kMaxLength, &to) ||
      !GetInt(env, a[2], "from", 0, to, &from) || !GetDouble(env, a[4], "beta", &beta))
    return nullptr;
  if (navg != np || to > np) {
    napi_throw_range_error(env, nullptr, "emaFold: avg and p must have one length, and `to` be within it");
    return nullptr;
  }
  if (!CheckDisjoint(env, avg, navg, p, np, "avg")) return nullptr;
  EmaFold(IsaOf(args), beta, avg + from, p + from, static_cast<std::size_t>(to - from));
  return Undefined(env);
}

napi_value ApiMeanOfTwo(napi_env env, napi_callback_info info) {
  CallArgs args;
  if (!ReadArgs(env, info, 6, &args)) return nullptr;
  const napi_value* a = args.v;
  float* out;
  long long n;
  SumTerm terms[2];
  double total;
  if (!GetWhole(env, a[0], "out", &out, &n) || !GetTerm(env, a[1], a[2], "x0", n, out, &terms[0]) || !GetTerm(env, a[3], a[4], "x1", n, out, &terms[1]) ||
      !GetDouble(env, a[5], "total", &total))
    return nullptr;
  napi_value worst;
  napi_create_double(env, MeanOfTwo(IsaOf(args), out, terms[0], terms[1], total, static_cast<std::size_t>(n)), &worst);
  return worst;
}

napi_value ApiSumTerms(napi_env env, napi_callback_info info) {
  CallArgs args;
  if (!ReadArgs(env, info, 5, &args)) return nullptr;
  const napi_value* a = args.v;
  uint32_t k = 0, kw = 0;
  bool xs_array = false, ws_array = false;
  napi_is_array(env, a[0], &xs_array);
  napi_is_array(env, a[1], &ws_array);
  if (!xs_array || !ws_array || napi_get_array_length(env, a[0], &k) != napi_ok || napi_get_array_length(env, a[1], &kw) != napi_ok || k == 0 ||
      kw != k) {
    napi_throw_type_error(env, nullptr, "sumTerms: expected non-empty arrays xs and ws of one length");
    return nullptr;
  }
  float* out = nullptr;
  double* acc = nullptr;
  long long n;
  const napi_valuetype out_type = TypeOf(env, a[3]);
  if (out_type != napi_null && out_type != napi_undefined) {
    if (!GetWhole(env, a[3], "out", &out, &n)) return nullptr;
  } else if (!GetWholeF64(env, a[2], "acc (the sums go there without out)", &acc, &n))
    return nullptr;
  double total;
  if (!GetDouble(env, a[4], "total", &total)) return nullptr;
  std::vector<SumTerm> terms(k);
  for (uint32_t j = 0; j < k; j++) {
    napi_value x, w;
    if (napi_get_element(env, a[0], j, &x) != napi_ok || napi_get_element(env, a[1], j, &w) != napi_ok) return nullptr;
    const std::string name = "xs[" + std::to_string(j) + "]";
    if (!GetTerm(env, x, w, name.c_str(), n, out != nullptr ? out : reinterpret_cast<float*>(acc), &terms[j], out != nullptr ? n : 2 * n)) return nullptr;
  }
  std::vector<uint32_t> redo;
  const double worst = SumTerms(IsaOf(args), terms.data(), k, static_cast<std::size_t>(n), acc, out, total, &redo);
  napi_value result, worst_value, redo_list;
  napi_create_object(env, &result);
  napi_create_double(env, worst, &worst_value);
  napi_create_array_with_length(env, redo.size(), &redo_list);
  for (std::size_t i = 0; i < redo.size(); i++) {
    napi_value index;
    napi_create_uint32(env, redo[i], &index);
    napi_set_element(env, redo_list, static_cast<uint32_t>(i), index);
  }
  napi_set_named_property(env, result, "worst", worst_value);
  napi_set_named_property(env, result, "redo", redo_list);
  return result;
}

napi_value ApiSumOfSquares(napi_env env, napi_callback_info info) {
  CallArgs args;
  if (!ReadArgs(env, info, 1, &args)) return nullptr;
  FloatArray x;
  if (!FloatArrayOf(env, args.v[0], &x)) {
    TypeError(env, "sumOfSquares: expected a Float32Array or Float64Array");
    return nullptr;
  }
  void* into = nullptr;
  if (TypeOf(env, args.v[1]) != napi_undefined) {
    FloatArray copy;
    if (!FloatArrayOf(env, args.v[1], &copy) || copy.f64 != x.f64 || copy.length != x.length) {
      TypeError(env, "sumOfSquares: `into` must be an array of the values' type and length");
      return nullptr;
    }
    into = copy.data;
  }
  const Squares r = SumOfSquares(IsaOf(args), SumTerm{x.data, x.f64, 1}, static_cast<std::size_t>(x.length), into);
  napi_value result, squares, worst;
  napi_create_object(env, &result);
  napi_create_double(env, r.sum, &squares);
  napi_create_double(env, r.worst, &worst);
  napi_set_named_property(env, result, "squares", squares);
  napi_set_named_property(env, result, "worst", worst);
  return result;
}

}  // namespace ganfleet
