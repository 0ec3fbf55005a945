// Cache counters: one set per shard, each on its own false-sharing block, summed on read.
// A thread always adds to the same shard, so counters written by different threads rarely
// share a line. Batch operations add their totals once per call, not once per key.
//
// Sampled operation latency: 1 call in `period` (a power of two; 0 switches timing off) is
// timed and counted in a log2 histogram per operation type, in the same per-shard way. A
// call that is not timed costs one decrement and one branch on its shard's countdown.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
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

// Operation types timed by the latency histograms. Batch calls are timed per call, not per
// key (get_into counts as kGetBatch); put_prefetched is kPutPrefetched.
enum class Op : std::size_t {
  kGet = 0,
  kPut,
  kPutPrefetched,
  kDelete,
  kContains,
  kGetBatch,
  kPutBatch,
  kDeleteBatch,
  kContainsBatch,
  kCount
};
inline constexpr std::size_t kNumOps = static_cast<std::size_t>(Op::kCount);
inline constexpr const char* kOpNames[kNumOps] = {"get",       "put",          "put_prefetched",
                                                  "delete",    "contains",     "get_batch",
                                                  "put_batch", "delete_batch", "contains_batch"};

// Latency buckets: bucket 0 holds durations <= 2^kLatencyMinLog2 ns, bucket i (0 < i <
// kLatencyBuckets - 1) holds (2^(kLatencyMinLog2+i-1), 2^(kLatencyMinLog2+i)] ns, and the last
// bucket everything longer (up to +Inf). So 64 ns .. 2^30 ns (about 1.07 s) finite bounds.
inline constexpr unsigned kLatencyMinLog2 = 6;
inline constexpr std::size_t kLatencyBuckets = 26;
inline constexpr uint32_t kDefaultLatencyPeriod = 64;

// The bucket of a duration of ns nanoseconds (see above): ceil(log2(ns)) clamped.
constexpr std::size_t latency_bucket(uint64_t ns) noexcept {
  if (ns <= (uint64_t{1} << kLatencyMinLog2)) return 0;
  const unsigned bits = 64u - static_cast<unsigned>(__builtin_clzll(ns - 1));  // ceil(log2 ns)
  const std::size_t b = bits - kLatencyMinLog2;
  return b < kLatencyBuckets - 1 ? b : kLatencyBuckets - 1;
}

// Upper bound in ns of bucket b (the last one has none: it is +Inf).
constexpr uint64_t latency_bucket_bound_ns(std::size_t b) noexcept {
  return uint64_t{1} << (kLatencyMinLog2 + b);
}

// A summed histogram of one operation type: per-bucket counts (not cumulative) and the sum.
struct LatencyHistogram {
  std::array<uint64_t, kLatencyBuckets> counts{};
  uint64_t sum_ns = 0;
};

// Monotonic nanoseconds; out of line (see Stats::reload): only timed calls read it.
__attribute__((noinline, cold)) inline uint64_t latency_clock_ns() noexcept {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

class Stats {
 public:
  static constexpr std::size_t kShards = 16;

  explicit Stats(uint32_t latency_period = kDefaultLatencyPeriod) noexcept {
    set_latency_period(latency_period);
  }

  // period must be 0 or a power of two (the caller validates); takes effect within one
  // period of the calls of each shard.
  void set_latency_period(uint32_t period) noexcept {
    period_.store(period, std::memory_order_relaxed);
    for (Shard& s : shards_) s.countdown.store(period, std::memory_order_relaxed);
  }
  uint32_t latency_period() const noexcept { return period_.load(std::memory_order_relaxed); }

  // Whether the calling thread's next operation is one to time. A plain load and store, not
  // an atomic read-modify-write: two threads on one shard may both miss or both take a
  // sample, which only moves the sampling rate, never a count of what was timed. With
  // period 0 the countdown wraps to 2^32 - 1 and the reload check finds timing off.
  bool sample_latency() noexcept {
    std::atomic<uint32_t>& c = shard().countdown;
    const uint32_t left = c.load(std::memory_order_relaxed) - 1;
    if (__builtin_expect(left != 0, 1)) {
      c.store(left, std::memory_order_relaxed);
      return false;
    }
    return reload(c);
  }

  // Out of line and cold, like everything on the timed path, so the untimed path of the
  // callers stays as small as before and keeps its inlining (see docs/benchmarks.md).
  // A caller that gets true reads latency_clock_ns() and later calls finish_latency().
  __attribute__((noinline, cold)) bool reload(std::atomic<uint32_t>& c) noexcept {
    const uint32_t period = period_.load(std::memory_order_relaxed);
    c.store(period, std::memory_order_relaxed);
    return period != 0;
  }

  __attribute__((noinline, cold)) void record_latency(Op op, uint64_t ns) noexcept {
    Histo& h = histos_[thread_shard()].ops[static_cast<std::size_t>(op)];
    h.counts[latency_bucket(ns)].fetch_add(1, std::memory_order_relaxed);
    h.sum_ns.fetch_add(ns, std::memory_order_relaxed);
  }

  // Records a call timed from start_ns (latency_clock_ns) until now.
  __attribute__((noinline, cold)) void finish_latency(Op op, uint64_t start_ns) noexcept {
    const uint64_t now = latency_clock_ns();
    record_latency(op, now > start_ns ? now - start_ns : 0);
  }

  LatencyHistogram latency(Op op) const noexcept {
    LatencyHistogram out;
    for (const HistoShard& s : histos_) {
      const Histo& h = s.ops[static_cast<std::size_t>(op)];
      for (std::size_t b = 0; b < kLatencyBuckets; ++b)
        out.counts[b] += h.counts[b].load(std::memory_order_relaxed);
      out.sum_ns += h.sum_ns.load(std::memory_order_relaxed);
    }
    return out;
  }

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
    for (HistoShard& s : histos_) {
      for (Histo& h : s.ops) {
        for (auto& x : h.counts) x.store(0, std::memory_order_relaxed);
        h.sum_ns.store(0, std::memory_order_relaxed);
      }
    }
  }

 private:
  struct alignas(kFalseSharingRange) Shard {
    std::array<std::atomic<uint64_t>, kNumCounters> c{};
    std::atomic<uint32_t> countdown{0};  // calls of this shard until the next timed one
  };
  struct Histo {
    std::array<std::atomic<uint64_t>, kLatencyBuckets> counts{};
    std::atomic<uint64_t> sum_ns{0};
  };
  // Kept apart from the counters: written only by timed calls, so they never pull the
  // hot counter lines of another shard along.
  struct alignas(kFalseSharingRange) HistoShard {
    std::array<Histo, kNumOps> ops{};
  };

  static std::size_t thread_shard() noexcept {
    static std::atomic<std::size_t> next{0};
    thread_local const std::size_t mine = next.fetch_add(1, std::memory_order_relaxed) % kShards;
    return mine;
  }
  Shard& shard() noexcept { return shards_[thread_shard()]; }

  std::array<Shard, kShards> shards_{};
  std::array<HistoShard, kShards> histos_{};
  std::atomic<uint32_t> period_{kDefaultLatencyPeriod};
};

// Times one call when the stats' sampling says so: for backends whose calls have no
// per-call log of their own to carry the start time (the CUDA backend).
class ScopedLatency {
 public:
  ScopedLatency(Stats& stats, Op op) noexcept
      : stats_(stats), op_(op), start_ns_(stats.sample_latency() ? latency_clock_ns() : 0) {}
  ScopedLatency(const ScopedLatency&) = delete;
  ScopedLatency& operator=(const ScopedLatency&) = delete;
  ~ScopedLatency() {
    if (start_ns_ != 0) stats_.finish_latency(op_, start_ns_);
  }

 private:
  Stats& stats_;
  Op op_;
  uint64_t start_ns_;
};

}  // namespace predis
