// Convolution entry points. Every one starts with the 15 geometry numbers
//   batch, inHeight, inWidth, inChannels, outChannels, filterHeight,
//   filterWidth, strideHeight, strideWidth, dilationHeight, dilationWidth,
//   padTop, padBottom, padLeft, padRight
// followed by (array, offset) pairs:
//   conv2d(..., x, xOff, filter, fOff, y, yOff, bias, biasOff, relu)
//   conv2dBackpropInput(..., dy, dyOff, filter, fOff, dx, dxOff, bias, biasOff, relu)
//   conv2dBackpropFilter(..., x, xOff, dy, dyOff, dfilter, dfOff)
#include <new>
#include <string>

#include "api.h"
#include "conv.h"
#include "instance.h"
#include "napi_util.h"

namespace ganfleet {
namespace {

constexpr int kGeometryArgs = 15;

bool GetGeometry(napi_env env, const napi_value* v, ConvGeometry* g) {
  int* fields[kGeometryArgs] = {&g->batch,    &g->in_h,     &g->in_w,  &g->in_c,  &g->out_c, &g->f_h,   &g->f_w,  &g->stride_h,
                                &g->stride_w, &g->dil_h,    &g->dil_w, &g->pad_t, &g->pad_b, &g->pad_l, &g->pad_r};
  static const char* const names[kGeometryArgs] = {"batch",       "inHeight",       "inWidth",       "inChannels", "outChannels",
                                                   "filterHeight", "filterWidth",    "strideHeight",  "strideWidth", "dilationHeight",
                                                   "dilationWidth", "padTop",        "padBottom",     "padLeft",    "padRight"};
  for (int i = 0; i < kGeometryArgs; ++i)
    if (!GetInt(env, v[i], names[i], 0, fields[i])) return false;
  if (const char* err = ResolveGeometry(g)) {
    napi_throw_range_error(env, nullptr, (std::string("convolution geometry: ") + err).c_str());
    return false;
  }
  return true;
}

template <class F>
napi_value Guarded(napi_env env, const char* name, F&& run) {
  try {
    run();
  } catch (const std::bad_alloc&) {
    napi_throw_error(env, nullptr, (std::string(name) + ": out of memory").c_str());
    return nullptr;
  }
  return Undefined(env);
}

// Shared by forward and backprop-input: (in, filter, out, bias, relu).
struct Operands {
  const float* in;
  const float* filter;
  float* out;
  Epilogue ep;
};

bool GetOperands(napi_env env, const napi_value* v, const char* in_name, long long in_size, const char* out_name, long long out_size,
                 long long bias_size, long long filter_size, Operands* o) {
  float *in, *filter, *out, *bias;
  if (!GetF32(env, v[0], v[1], in_name, in_size, false, &in) || !GetF32(env, v[2], v[3], "filter", filter_size, false, &filter) ||
      !GetF32(env, v[4], v[5], out_name, out_size, false, &out) || !GetF32(env, v[6], v[7], "bias", bias_size, true, &bias) ||
      !GetBool(env, v[8], "relu", &o->ep.relu) || !CheckDisjoint(env, out, out_size, in, in_size, out_name) ||
      !CheckDisjoint(env, out, out_size, filter, filter_size, out_name) || !CheckDisjoint(env, out, out_size, bias, bias_size, out_name))
    return false;
  o->in = in;
  o->filter = filter;
  o->out = out;
  o->ep.bias = bias;
  return true;
}

}  // namespace

napi_value ApiConv2d(napi_env env, napi_callback_info info) {
  CallArgs args;
  ConvGeometry g;
  Operands o;
  if (!ReadArgs(env, info, kGeometryArgs + 9, &args) || !GetGeometry(env, args.v, &g) ||
      !GetOperands(env, args.v + kGeometryArgs, "x", g.InputSize(), "y", g.OutputSize(), g.out_c, g.FilterSize(), &o))
    return nullptr;
  return Guarded(env, "conv2d", [&] {
    Exec ex = static_cast<Instance*>(args.data)->MakeExec();
    Conv2d(g, o.in, o.filter, o.out, o.ep, ex);
  });
}

napi_value ApiConv2dBackpropInput(napi_env env, napi_callback_info info) {
  CallArgs args;
  ConvGeometry g;
  Operands o;
  if (!ReadArgs(env, info, kGeometryArgs + 9, &args) || !GetGeometry(env, args.v, &g) ||
      !GetOperands(env, args.v + kGeometryArgs, "dy", g.OutputSize(), "dx", g.InputSize(), g.in_c, g.FilterSize(), &o))
    return nullptr;
  return Guarded(env, "conv2dBackpropInput", [&] {
    Exec ex = static_cast<Instance*>(args.data)->MakeExec();
    Conv2dBackpropInput(g, o.in, o.filter, o.out, o.ep, ex);
  });
}

napi_value ApiConv2dBackpropFilter(napi_env env, napi_callback_info info) {
  CallArgs args;
  ConvGeometry g;
  float *x, *dy, *df;
  if (!ReadArgs(env, info, kGeometryArgs + 6, &args) || !GetGeometry(env, args.v, &g)) return nullptr;
  const napi_value* v = args.v + kGeometryArgs;
  if (!GetF32(env, v[0], v[1], "x", g.InputSize(), false, &x) || !GetF32(env, v[2], v[3], "dy", g.OutputSize(), false, &dy) ||
      !GetF32(env, v[4], v[5], "dfilter", g.FilterSize(), false, &df) || !CheckDisjoint(env, df, g.FilterSize(), x, g.InputSize(), "dfilter") ||
      !CheckDisjoint(env, df, g.FilterSize(), dy, g.OutputSize(), "dfilter"))
    return nullptr;
  return Guarded(env, "conv2dBackpropFilter", [&] {
    Exec ex = static_cast<Instance*>(args.data)->MakeExec();
    Conv2dBackpropFilter(g, x, dy, df, ex);
  });
}

}  // namespace ganfleet
