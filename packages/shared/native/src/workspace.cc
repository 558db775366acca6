#include "workspace.h"

namespace ganfleet {

void Workspace::Grow(Slot* s, std::size_t floats) {
  if (s->capacity >= floats) return;
  // 64-byte alignment: packed B panels are read with aligned vector loads.
  s->floats.reset(static_cast<float*>(::operator new[](floats * sizeof(float), std::align_val_t(64))));
  s->capacity = floats;
}

void Workspace::Reserve(int workers, std::size_t floats, std::size_t pointers) {
  if (static_cast<int>(slots_.size()) < workers) slots_.resize(workers);
  for (int w = 0; w < workers; ++w) {
    Grow(&slots_[w], floats);
    if (slots_[w].pointers.size() < pointers) slots_[w].pointers.resize(pointers);
  }
}

float* Workspace::Shared(std::size_t floats) {
  Grow(&shared_, floats);
  return shared_.floats.get();
}

}  // namespace ganfleet
