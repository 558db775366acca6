// Module registration and the settings functions (ISA path, thread count).
#include <node_api.h>

#include <cstdint>
#include <initializer_list>
#include <new>
#include <string>

#include "api.h"
#include "instance.h"
#include "napi_util.h"

namespace ganfleet {
namespace {

constexpr int kMaxThreads = 256;

Instance* Self(const CallArgs& args) { return static_cast<Instance*>(args.data); }

napi_value String(napi_env env, const char* s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

napi_value ApiIsa(napi_env env, napi_callback_info info) {
  CallArgs args;
  if (!ReadArgs(env, info, 0, &args)) return nullptr;
  return String(env, IsaName(Self(args)->isa));
}

napi_value ApiSupportedIsas(napi_env env, napi_callback_info) {
  napi_value list;
  napi_create_array(env, &list);
  const Isa best = DetectIsa();
  uint32_t i = 0;
  for (Isa isa : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512})
    if (isa <= best) napi_set_element(env, list, i++, String(env, IsaName(isa)));
  return list;
}

napi_value ApiSetIsa(napi_env env, napi_callback_info info) {
  CallArgs args;
  if (!ReadArgs(env, info, 1, &args)) return nullptr;
  char name[32];
  std::size_t len = 0;
  if (napi_get_value_string_utf8(env, args.v[0], name, sizeof(name), &len) != napi_ok) {
    napi_throw_type_error(env, nullptr, "setIsa: expected a string");
    return nullptr;
  }
  Isa isa;
  if (!ParseIsa(name, &isa) || isa > DetectIsa()) {
    napi_throw_range_error(env, nullptr, (std::string("setIsa: '") + name + "' is not supported on this CPU").c_str());
    return nullptr;
  }
  Self(args)->isa = isa;
  return Undefined(env);
}

napi_value ApiThreads(napi_env env, napi_callback_info info) {
  CallArgs args;
  if (!ReadArgs(env, info, 0, &args)) return nullptr;
  napi_value v;
  napi_create_int32(env, Self(args)->pool->threads(), &v);
  return v;
}

napi_value ApiSetThreads(napi_env env, napi_callback_info info) {
  CallArgs args;
  int n;
  if (!ReadArgs(env, info, 1, &args) || !GetInt(env, args.v[0], "threads", 1, &n)) return nullptr;
  if (n > kMaxThreads) {
    napi_throw_range_error(env, nullptr, "setThreads: at most 256 threads");
    return nullptr;
  }
  Instance* self = Self(args);
  if (n != self->pool->threads()) {
    self->pool.reset();  // join the old workers before starting new ones
    self->pool = std::make_unique<ThreadPool>(n);
  }
  return Undefined(env);
}

void DeleteInstance(napi_env, void* data, void*) { delete static_cast<Instance*>(data); }

}  // namespace
}  // namespace ganfleet

NAPI_MODULE_INIT() {
  using namespace ganfleet;
  Instance* self = new (std::nothrow) Instance();
  if (self == nullptr || napi_set_instance_data(env, self, DeleteInstance, nullptr) != napi_ok) {
    delete self;
    napi_throw_error(env, nullptr, "ganfleet_native: could not create instance state");
    return nullptr;
  }
  const struct {
    const char* name;
    napi_callback fn;
  } methods[] = {
      {"isa", ApiIsa},
      {"supportedIsas", ApiSupportedIsas},
      {"setIsa", ApiSetIsa},
      {"threads", ApiThreads},
      {"setThreads", ApiSetThreads},
      {"sgemm", ApiSgemm},
      {"conv2d", ApiConv2d},
      {"conv2dBackpropInput", ApiConv2dBackpropInput},
      {"conv2dBackpropFilter", ApiConv2dBackpropFilter},
      {"adamUpdate", ApiAdamUpdate},
      {"emaFold", ApiEmaFold},
      {"meanOfTwo", ApiMeanOfTwo},
      {"sumTerms", ApiSumTerms},
      {"sumOfSquares", ApiSumOfSquares},
      {"mapShared", ApiMapShared},
      {"ring", ApiRing},
      {"waitRing", ApiWaitRing},
      {"watchRing", ApiWatchRing},
  };
  for (const auto& m : methods) {
    napi_value fn;
    if (napi_create_function(env, m.name, NAPI_AUTO_LENGTH, m.fn, self, &fn) != napi_ok ||
        napi_set_named_property(env, exports, m.name, fn) != napi_ok)
      return nullptr;
  }
  return exports;
}
