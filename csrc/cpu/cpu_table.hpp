// The CPU backend: bucket.hpp driven by host threads, one spinlock word per bucket.
//
// Locking: a bucket's lock covers its slots and the records they point to; an operation
// holds one bucket lock at a time, and may take an arena class lock inside it (never the
// reverse), so there is no lock-order cycle. Values are copied out under the bucket lock,
// so a concurrent put or evict cannot free a record while it is read.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "cpu/huge_buffer.hpp"
#include "cpu/slab_arena.hpp"
#include "predis/access_log.hpp"
#include "predis/bucket.hpp"
#include "predis/stats.hpp"
#include "predis/table.hpp"
#include "predis/time_source.hpp"

namespace predis {

class CpuTable final : public Table {
 public:
  explicit CpuTable(const TableConfig& config);
  ~CpuTable() override;

  const char* backend() const noexcept override { return "cpu"; }
  const TableConfig& config() const noexcept override { return config_; }

  bool get(const KeyRef& key, ValueSink& sink) override;
  bool contains(const KeyRef& key) override;
  void put(const KeyRef& key, ValueRef value, uint64_t ttl_ns) override;
  void put_prefetched(const KeyRef& key, ValueRef value, uint64_t ttl_ns,
                      double confidence) override;
  bool erase(const KeyRef& key) override;

  void get_batch(const KeyBatch& keys, std::vector<uint8_t>& data, int64_t* offsets,
                 uint8_t* found) override;
  TooLong get_into(const KeyBatch& keys, uint8_t* out, std::size_t width, uint8_t* found) override;
  void put_batch(const KeyBatch& keys, const ValueRef* values, uint64_t ttl_ns) override;
  std::size_t erase_batch(const KeyBatch& keys, uint8_t* erased) override;
  void contains_batch(const KeyBatch& keys, uint8_t* out) override;

  uint64_t footprint(KeyKind kind, uint32_t key_len, uint32_t value_len) const noexcept override;
  void clear() override;
  uint64_t size() const noexcept override { return items_.load(std::memory_order_relaxed); }
  StatsSnapshot stats() const override;

  std::size_t drain_events(AccessEvent* out, std::size_t max) override;
  void set_sample_rate(double rate) override { log_.set_sample_rate(rate); }
  double sample_rate() const noexcept override { return log_.sample_rate(); }
  void set_latency_period(uint32_t period) override { stats_.set_latency_period(period); }
  uint32_t latency_period() const noexcept override { return stats_.latency_period(); }

  bool advance_time(uint64_t ns) override { return clock_.advance(ns); }
  uint64_t now() const noexcept override { return clock_.now(); }

  uint64_t num_buckets() const noexcept { return mask_ + 1; }

 private:
  // Per-call scratch: counter totals and sampled events, flushed once at the end.
  struct CallLog;
  // A value ready to be placed in a slot: a record handle or the inline value itself.
  struct Stored {
    uint64_t word;
    uint8_t form;
  };

  void prefetch_bucket(const KeyRef& key) const noexcept;  // both candidate buckets

  // Calls f with the full-key check for `key` (bytes keys compare their stored copy).
  template <class F>
  auto with_key_eq(const KeyRef& key, F&& f) const;

  // Under the bucket lock.
  int locate(const Bucket& b, const KeyRef& key, uint8_t digest) const noexcept;
  void drop_slot(Bucket& b, int i) noexcept;  // clears the slot and releases its value

  Stored store_value(const KeyRef& key, ValueRef value);  // allocates and fills a record
  void release_value(uint64_t word, uint8_t form) noexcept;

  // The shared single-key steps that every public operation is built from.
  template <class OnHit>
  bool lookup(const KeyRef& key, const Placement& p, uint64_t now, uint64_t tick, bool touch,
              CallLog& log, OnHit&& on_hit);
  // Returns whether a live entry was replaced; with kPrefetched (a guess ranked `demote`
  // operations back, see insert_into_pair), whether the guess was dropped for a live entry.
  template <bool kPrefetched = false>
  bool insert(const KeyRef& key, const Stored& value, uint64_t expiry, uint64_t now, uint64_t tick,
              CallLog& log, uint64_t demote = 0);
  bool remove(const KeyRef& key, uint64_t now, CallLog& log);
  void enforce_limits(const Protected& protect, CallLog& log);
  bool evict_one(const Protected& protect, CallLog& log);
  void flush(CallLog& log) noexcept;

  // Runs body(i, placement) for every key, prefetching ahead: bucket headers first, then
  // the slot whose digest matches, then its record, so several cache misses are in flight.
  template <class Body>
  void for_each_pipelined(const KeyBatch& keys, Body&& body);

  TableConfig config_;
  uint64_t mask_;
  HugeBuffer bucket_memory_;
  Bucket* buckets_;  // (mask_ + 1) buckets in bucket_memory_
  SlabArena arena_;
  TimeSource clock_;
  AccessLog log_;
  Stats stats_;

  alignas(kFalseSharingRange) std::atomic<uint64_t> tick_{1};
  alignas(kFalseSharingRange) std::atomic<uint64_t> items_{0};
  alignas(kFalseSharingRange) std::atomic<uint64_t> bytes_used_{0};
  alignas(kFalseSharingRange) std::atomic<uint64_t> hand_{0};
};

}  // namespace predis
