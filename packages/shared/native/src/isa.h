// Instruction-set paths and run-time CPU detection.
#pragma once

namespace ganfleet {

// Ordered: a higher value needs everything a lower one needs.
enum class Isa { kPortable = 0, kAvx2 = 1, kAvx512 = 2 };

const char* IsaName(Isa isa);
// Returns false for an unknown name.
bool ParseIsa(const char* name, Isa* out);
// Best path this CPU (and OS register state) supports.
Isa DetectIsa();
// Path used at start-up: GANFLEET_NATIVE_ISA if set and supported (clamped
// to what the CPU has), else the best one.
Isa InitialIsa();

}  // namespace ganfleet
