#include "kernel.h"

#include "config.h"

namespace ganfleet {

const KernelSet& KernelsFor(Isa isa) {
#if GF_X86_SIMD
  if (isa == Isa::kAvx512) return Avx512Kernels();
  if (isa == Isa::kAvx2) return Avx2Kernels();
#else
  (void)isa;
#endif
  return PortableKernels();
}

}  // namespace ganfleet
