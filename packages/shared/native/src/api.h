// N-API entry points; `data` of each is the environment's Instance.
#pragma once

#include <node_api.h>

namespace ganfleet {

napi_value ApiSgemm(napi_env env, napi_callback_info info);
napi_value ApiConv2d(napi_env env, napi_callback_info info);
napi_value ApiConv2dBackpropInput(napi_env env, napi_callback_info info);
napi_value ApiConv2dBackpropFilter(napi_env env, napi_callback_info info);
napi_value ApiAdamUpdate(napi_env env, napi_callback_info info);
napi_value ApiEmaFold(napi_env env, napi_callback_info info);
napi_value ApiMeanOfTwo(napi_env env, napi_callback_info info);
napi_value ApiSumTerms(napi_env env, napi_callback_info info);
napi_value ApiSumOfSquares(napi_env env, napi_callback_info info);
napi_value ApiMapShared(napi_env env, napi_callback_info info);
napi_value ApiRing(napi_env env, napi_callback_info info);
napi_value ApiWaitRing(napi_env env, napi_callback_info info);
napi_value ApiWatchRing(napi_env env, napi_callback_info info);

}  // namespace ganfleet
