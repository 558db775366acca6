// Build-time switches shared by every translation unit.
#pragma once

// The x86 SIMD paths need GCC/Clang function-level target attributes and
// __builtin_cpu_supports; everything else builds only the portable path.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define GF_X86_SIMD 1
#else
#define GF_X86_SIMD 0
#endif
