// A deliberate, opt-in regression for proving that the benchmark checks catch one
// (docs/benchmarks.md, "Proving the checks work"). Built with -DPREDIS_BENCH_SLOWDOWN=N
// (CMake option PREDIS_BENCH_SLOWDOWN, pip: PREDIS_BENCH_SLOWDOWN=N), every key lookup
// spins N empty iterations first. Every real build leaves it at 0, where this compiles
// to nothing; predis.build_info()["bench_slowdown"] says which build is loaded.
#pragma once

#ifndef PREDIS_BENCH_SLOWDOWN
#define PREDIS_BENCH_SLOWDOWN 0
#endif

namespace predis {

inline constexpr int kBenchSlowdown = PREDIS_BENCH_SLOWDOWN;
static_assert(kBenchSlowdown >= 0, "PREDIS_BENCH_SLOWDOWN must be a non-negative count");

inline void bench_slowdown_spin() noexcept {
  if constexpr (kBenchSlowdown > 0) {
    // The empty asm with a memory clobber keeps the compiler from deleting the loop.
    for (int i = 0; i < kBenchSlowdown; ++i) __asm__ __volatile__("" ::: "memory");
  }
}

}  // namespace predis
