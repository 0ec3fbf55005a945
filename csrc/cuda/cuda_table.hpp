// The CUDA backend: the bucket array and the value records in device memory, driven by the
// kernels of cuda/kernels.cu, which run the shared predis/bucket.hpp logic.
//
// Concurrency: the device runs a batch's keys in parallel (bucket lock words taken by CAS);
// the host serialises calls with one mutex, so a batch never overlaps another and a record
// is released only after the kernels that unlinked it have finished. Counters, the clock,
// the access log and the tick follow the CPU backend step for step, so the two backends
// give the same results for the same operations (tests/gpu/test_cuda_differential.py).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "cuda/device_arena.hpp"
#include "cuda/kernels.hpp"
#include "cuda/resources.hpp"
#include "predis/access_log.hpp"
#include "predis/stats.hpp"
#include "predis/table.hpp"
#include "predis/time_source.hpp"

namespace predis::cuda {

// A host array and its device twin, both grown on demand.
template <class T>
struct Mirror {
  Growing<PinnedBuffer> host_buf;
  Growing<DeviceBuffer> dev_buf;

  // Both sides sized for n items; returns the host side.
  T* prepare(std::size_t n) {
    dev_buf.at_least(n * sizeof(T));
    return host_buf.at_least(n * sizeof(T)).template as<T>();
  }
  T* host() noexcept { return host_buf.get().template as<T>(); }
  T* dev() noexcept { return dev_buf.get().template as<T>(); }
  T* dev(std::size_t n) { return dev_buf.at_least(n * sizeof(T)).template as<T>(); }
  void up(std::size_t n, cudaStream_t s) {
    if (n != 0)
      check(cudaMemcpyAsync(dev(), host(), n * sizeof(T), cudaMemcpyHostToDevice, s),
            "copying to the device");
  }
  void down(std::size_t n, cudaStream_t s) {
    if (n != 0)
      check(cudaMemcpyAsync(host(), dev(), n * sizeof(T), cudaMemcpyDeviceToHost, s),
            "copying from the device");
  }
};

class CudaTable final : public Table, public DeviceBatchOps {
 public:
  // Throws BackendError: kUnavailable (no driver or device) or kOutOfMemory.
  explicit CudaTable(const TableConfig& config);
  ~CudaTable() override;

  const char* backend() const noexcept override { return "cuda"; }
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
  uint64_t size() const noexcept override;
  StatsSnapshot stats() const override;

  std::size_t drain_events(AccessEvent* out, std::size_t max) override;
  void set_sample_rate(double rate) override { log_.set_sample_rate(rate); }
  double sample_rate() const noexcept override { return log_.sample_rate(); }
  void set_latency_period(uint32_t period) override { stats_.set_latency_period(period); }
  uint32_t latency_period() const noexcept override { return stats_.latency_period(); }

  bool advance_time(uint64_t ns) override { return clock_.advance(ns); }
  uint64_t now() const noexcept override { return clock_.now(); }

  DeviceBatchOps* device_ops() noexcept override { return this; }
  TooLong get_into_device(const uint64_t* keys, std::size_t n, uint8_t* out, std::size_t width,
                          uint8_t* found, uintptr_t stream) override;
  void contains_device(const uint64_t* keys, std::size_t n, uint8_t* out,
                       uintptr_t stream) override;
  void put_device(const uint64_t* keys, std::size_t n, const uint8_t* values, std::size_t width,
                  uint64_t ttl_ns, uintptr_t stream) override;
  std::size_t erase_device(const uint64_t* keys, std::size_t n, uint8_t* erased,
                           uintptr_t stream) override;

  int device_index() const noexcept override { return device_; }

 private:
  class CallLog;
  // One half of the double-buffered staging: a stream and the arrays a chunk of keys needs.
  struct Lane {
    Stream stream;
    Event kernels_done;
    Mirror<uint64_t> keys;
    Mirror<uint8_t> kinds;
    Mirror<uint8_t> key_bytes;
    Mirror<uint64_t> key_offsets;
    Mirror<uint8_t> status;
    Mirror<uint64_t> word;
    Mirror<uint8_t> form;
    Mirror<uint32_t> length;
    Mirror<uint64_t> rsize;
    Mirror<uint8_t> rows;
    Mirror<uint8_t> found;
    Found found_view();
    DevKeys stage_keys(const KeyBatch& keys, std::size_t begin, std::size_t end);
  };

  void bind_device() const;
  DevTable view() const noexcept { return DevTable{buckets_.as<Bucket>(), mask_, config_.policy}; }
  // Orders our streams after work the caller queued on `stream` (0: nothing to wait for).
  void wait_for_caller(uintptr_t stream);

  // Releases a value that left the table (record bytes rsize, 0 for inline values).
  void release_value(uint64_t word, uint8_t form, uint64_t rsize);
  // Settles what a lookup found: expired entries it dropped are released and counted.
  void settle_lookup(Lane& lane, std::size_t n, CallLog& log);
  // Counts insert i's outcome (flags_ and the lane's old_* arrays) and releases what it
  // displaced; true when a live entry was replaced.
  bool account_insert(std::size_t i, Lane& lane, CallLog& log);
  // Zeroed device counters for one tally (kernels.hpp), on the lane's stream.
  unsigned long long* zero_tally(Lane& lane);
  // After a removal pass (erase or eviction) and its tally (already on the host in tally_):
  // items and bytes go down; records are fetched and released only when there are any.
  void release_removed(Lane& lane, std::size_t n);
  // Capacity eviction after a batch, until items and bytes are within the limits. A
  // single-key put protects its key, as the CPU backend does; a batch protects none.
  void enforce_limits(CallLog& log, const Protected& protect = Protected{});

  // Runs a lookup over keys in chunks of `chunk` keys on both lanes: chunk c's copies
  // overlap chunk c-1's kernels, while the kernels themselves stay in order. launch(lane, m)
  // queues kernels after the lookup, fetch(lane, m) the copies back, and finish(lane, begin,
  // end) reads the chunk's results on the host, chunks in order.
  template <class Launch, class Fetch, class Finish>
  void pipelined_lookup(const KeyBatch& keys, std::size_t chunk, bool touch, uint64_t now,
                        uint64_t tick, CallLog& log, Launch&& launch, Fetch&& fetch,
                        Finish&& finish);

  void insert_staged(Lane& lane, std::size_t n, const DevKeys& k, const uint64_t* words_dev,
                     const uint8_t* forms_dev, uint8_t form_all, uint64_t expiry, uint64_t now,
                     uint64_t tick, bool prefetched, uint64_t demote);
  // The bodies of the single-key and batch calls, which time themselves as their own Op.
  void contains_many(const KeyBatch& keys, uint8_t* out);
  std::size_t erase_many(const KeyBatch& keys, uint8_t* erased);
  void put_many(const KeyBatch& keys, const ValueRef* values, uint64_t ttl_ns, bool prefetched,
                double confidence);
  std::size_t erase_staged(Lane& lane, const DevKeys& k, uint64_t now, uint8_t* erased,
                           CallLog& log);

  mutable std::mutex mu_;
  int device_ = 0;
  TableConfig config_;
  uint64_t mask_ = 0;
  DeviceBuffer buckets_;
  DeviceArena arena_;
  TimeSource clock_;
  AccessLog log_;
  Stats stats_;
  std::unique_ptr<Lane> lanes_[2];
  std::unique_ptr<Event> caller_ready_;  // marks the caller's stream position
  Mirror<uint8_t> records_;              // records staged back to back for the scatter pass
  Mirror<uint64_t> record_src_;          // (records) offsets into records_
  Mirror<uint32_t> record_size_;         // (records)
  Mirror<uint64_t> record_dst_;          // (records) arena chunks
  Mirror<uint64_t> new_words_;           // (n) handle or inline value of each new entry
  Mirror<uint8_t> new_forms_;            // (n)
  Mirror<uint8_t> flags_;                // (n) InsertFlag
  Growing<DeviceBuffer> scan_temp_;
  Growing<DeviceBuffer> sizes_;       // (n + 1) int64
  Mirror<int64_t> offsets_;           // (n + 1)
  Mirror<uint8_t> data_;              // gathered values
  Mirror<unsigned long long> tally_;  // (8) per-batch counters summed on the device

  uint64_t tick_ = 1;
  std::atomic<uint64_t> items_{0};  // read by size() without the lock
  uint64_t bytes_used_ = 0;
  uint64_t hand_ = 0;
};

// Creates a CudaTable, or throws BackendError kUnavailable with the reason it cannot.
std::unique_ptr<Table> make_cuda_table(const TableConfig& config);

}  // namespace predis::cuda
