#include "isa.h"

#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "config.h"

namespace ganfleet {

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kPortable:
      break;
  }
  return "portable";
}

bool ParseIsa(const char* name, Isa* out) {
  for (Isa isa : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512}) {
    if (std::strcmp(name, IsaName(isa)) == 0) {
      *out = isa;
      return true;
    }
  }
  return false;
}

Isa DetectIsa() {
#if GF_X86_SIMD
  // libgcc/compiler-rt also check that the OS saves the wider registers.
  __builtin_cpu_init();
  const bool fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (fma && __builtin_cpu_supports("avx512f")) return Isa::kAvx512;
  if (fma) return Isa::kAvx2;
#endif
  return Isa::kPortable;
}

Isa InitialIsa() {
  const Isa best = DetectIsa();
  const char* env = std::getenv("GANFLEET_NATIVE_ISA");
  Isa wanted;
  if (env == nullptr || !ParseIsa(env, &wanted)) return best;
  return wanted < best ? wanted : best;
}

}  // namespace ganfleet
