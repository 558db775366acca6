// Per-worker scratch (packed B panels and A row pointers) and one shared
// buffer (padded inputs), kept between calls so that steady-state kernels
// allocate nothing.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <vector>

namespace ganfleet {

class Workspace {
 public:
  // Grows every worker's slot to at least the given sizes; never shrinks.
  void Reserve(int workers, std::size_t floats, std::size_t pointers);
  float* Floats(int worker) { return slots_[worker].floats.get(); }
  const float** Pointers(int worker) { return slots_[worker].pointers.data(); }
  // At least `floats` floats, contents undefined; valid until the next call.
  float* Shared(std::size_t floats);

 private:
  struct AlignedFree {
    void operator()(float* p) const { ::operator delete[](p, std::align_val_t(64)); }
  };
  struct Slot {
    std::unique_ptr<float[], AlignedFree> floats;
    std::size_t capacity = 0;
    std::vector<const float*> pointers;
  };
  static void Grow(Slot* s, std::size_t floats);
  std::vector<Slot> slots_;
  Slot shared_;
};

}  // namespace ganfleet
