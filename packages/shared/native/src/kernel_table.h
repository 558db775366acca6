// Fills a KernelSet from kernel templates `K<M, NV, kPanel>::Run` and `D<M>::Run`.
#pragma once

#include <utility>

#include "kernel.h"

namespace ganfleet {

template <template <int, int, bool> class K, int M, int NV>
void FillOne(KernelSet* ks) {
  ks->rows[M - 1][NV - 1] = &K<M, NV, false>::Run;
  ks->panel[M - 1][NV - 1] = &K<M, NV, true>::Run;
}

template <template <int, int, bool> class K, int M, int... NVs>
void FillRow(KernelSet* ks, std::integer_sequence<int, NVs...>) {
  (FillOne<K, M, NVs + 1>(ks), ...);
}

template <template <int, int, bool> class K, template <int> class D, int NV, int... Ms>
void FillAll(KernelSet* ks, std::integer_sequence<int, Ms...>) {
  (FillRow<K, Ms + 1>(ks, std::make_integer_sequence<int, NV>()), ...);
  ((ks->dot[Ms] = &D<Ms + 1>::Run), ...);
}

// MR rows, NV vectors of VL floats per tile row.
template <template <int, int, bool> class K, template <int> class D, int MR, int NV, int VL>
KernelSet MakeKernelSet(int kc) {
  KernelSet ks{};
  ks.mr = MR;
  ks.nr = NV * VL;
  ks.vl = VL;
  ks.kc = kc;
  FillAll<K, D, NV>(&ks, std::make_integer_sequence<int, MR>());
  return ks;
}

}  // namespace ganfleet
