// Sizing and accounting rules every backend follows, so that the same configuration and the
// same operations give the same table shape, the same capacity charges and the same expiry
// on the CPU and on the GPU. Host code (the device never needs these).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "predis/bucket.hpp"
#include "predis/table.hpp"

namespace predis {

// Buckets are sized so that max_items fills at most 3/4 of the slots (with two choices per
// key, a full bucket is then rare even at that load).
inline uint64_t bucket_count_for(uint64_t max_items) {
  const uint64_t wanted =
      std::max<uint64_t>(1, (max_items * 4 + 3 * kSlotsPerBucket - 1) / (3 * kSlotsPerBucket));
  uint64_t n = 1;
  while (n < wanted) n <<= 1;
  return n;
}

// Arena pages: 1/64 of the capacity, between 64 KiB and 2 MiB (one huge page), so a small
// cache does not reserve megabytes per size class and a large one does not take pages a
// chunk at a time.
inline constexpr std::size_t kMaxArenaPage = std::size_t{2} << 20;
inline std::size_t arena_page_bytes(uint64_t capacity) {
  std::size_t page = std::size_t{64} << 10;
  while (page < kMaxArenaPage && page < capacity / 64) page <<= 1;
  return page;
}

// Capacity charged for an inline value: the handle and expiry words it lives in.
inline constexpr uint64_t kInlineFootprint = 16;

// The expiry word for a TTL: 0 (never) for ttl 0; saturated rather than wrapped, so a huge
// TTL means "practically never" instead of "already expired".
inline uint64_t deadline(uint64_t now, uint64_t ttl_ns) noexcept {
  if (ttl_ns == 0) return 0;
  return ttl_ns > UINT64_MAX - now ? UINT64_MAX : now + ttl_ns;
}

inline bool stores_inline(const KeyRef& key, uint32_t value_len) noexcept {
  return key.kind == KeyKind::kInt && value_len <= kMaxInlineValue;
}

// A guess of confidence c ranks as if last used (1 - c) * (items + 1) operations ago: a
// sure guess beside fresh entries, a weak one behind every entry touched since.
inline uint64_t prefetch_demote(double confidence, uint64_t items) noexcept {
  const double n = static_cast<double>(items + 1);
  const double doubt = confidence < 0.0 ? 1.0 : (confidence > 1.0 ? 0.0 : 1.0 - confidence);
  return static_cast<uint64_t>(doubt * n);
}

// The parts of a stats snapshot every backend keeps the same way: the counters, the access
// log's figures and the sampled latency histograms. The backend fills in its sizes.
inline void fill_common_stats(StatsSnapshot& s, const Stats& stats, const AccessLog& log) {
  s.hits = stats.get(Counter::kHits);
  s.misses = stats.get(Counter::kMisses);
  s.inserts = stats.get(Counter::kInserts);
  s.updates = stats.get(Counter::kUpdates);
  s.deletes = stats.get(Counter::kDeletes);
  s.evictions = stats.get(Counter::kEvictions);
  s.expirations = stats.get(Counter::kExpirations);
  s.events_logged = stats.get(Counter::kEventsLogged);
  s.events_dropped = stats.get(Counter::kEventsDropped);
  s.events_pending = log.pending();
  s.log_capacity = log.capacity();
  s.latency_period = stats.latency_period();
  for (std::size_t i = 0; i < kNumOps; ++i) s.latency[i] = stats.latency(static_cast<Op>(i));
}

}  // namespace predis
