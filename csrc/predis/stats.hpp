// Cache counters: one set per shard, each on its own false-sharing block, summed on read.
// A thread always adds to the same shard, so counters written by different threads rarely
// share a line. Batch operations add their totals once per call, not once per key.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "predis/platform.hpp"

namespace predis {

enum class Counter : std::size_t {
  kHits = 0,
  kMisses,
  kInserts,
  kUpdates,
  kDeletes,
  kEvictions,
  kExpirations,
  kEventsLogged,
  kEventsDropped,
  kCount
};
inline constexpr std::size_t kNumCounters = static_cast<std::size_t>(Counter::kCount);

// Plain per-call totals, added to the shared counters in one go.
struct CounterDelta {
  std::array<uint64_t, kNumCounters> v{};
  void add(Counter c, uint64_t n = 1) noexcept { v[static_cast<std::size_t>(c)] += n; }
};

class Stats {
 public:
  static constexpr std::size_t kShards = 16;

  void add(Counter c, uint64_t n = 1) noexcept {
    if (n != 0) shard().c[static_cast<std::size_t>(c)].fetch_add(n, std::memory_order_relaxed);
  }

  void add(const CounterDelta& d) noexcept {
    Shard& s = shard();
    for (std::size_t i = 0; i < kNumCounters; ++i) {
      if (d.v[i] != 0) s.c[i].fetch_add(d.v[i], std::memory_order_relaxed);
    }
  }

  // Relaxed: a reader wants a recent total, not a snapshot consistent across counters.
  uint64_t get(Counter c) const noexcept {
    uint64_t sum = 0;
    for (const Shard& s : shards_)
      sum += s.c[static_cast<std::size_t>(c)].load(std::memory_order_relaxed);
    return sum;
  }

  void reset() noexcept {
    for (Shard& s : shards_) {
      for (auto& x : s.c) x.store(0, std::memory_order_relaxed);
    }
  }

 private:
  struct alignas(kFalseSharingRange) Shard {
    std::array<std::atomic<uint64_t>, kNumCounters> c{};
  };

  static std::size_t thread_shard() noexcept {
    static std::atomic<std::size_t> next{0};
    thread_local const std::size_t mine = next.fetch_add(1, std::memory_order_relaxed) % kShards;
    return mine;
  }
  Shard& shard() noexcept { return shards_[thread_shard()]; }

  std::array<Shard, kShards> shards_{};
};

}  // namespace predis
