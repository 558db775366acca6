// Per-environment addon state (one per Node main thread or worker_thread
// that loads the addon), owned through napi_set_instance_data.
#pragma once

#include <memory>

#include "gemm.h"
#include "isa.h"
#include "kernel.h"
#include "thread_pool.h"
#include "workspace.h"

namespace ganfleet {

struct Instance {
  Isa isa = InitialIsa();
  std::unique_ptr<ThreadPool> pool = std::make_unique<ThreadPool>(1);
  Workspace workspace;

  Exec MakeExec() { return Exec{KernelsFor(isa), *pool, workspace}; }
};

}  // namespace ganfleet
