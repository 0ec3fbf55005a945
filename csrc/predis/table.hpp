// The backend interface. Python's predis.Cache talks to a Table; make_table() is the one
// place that picks a backend. Every pointer parameter notes its shape and memory.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "predis/access_log.hpp"
#include "predis/bucket.hpp"
#include "predis/hash.hpp"
#include "predis/stats.hpp"

namespace predis {

struct TableConfig {
  uint64_t capacity_bytes = 0;  // bytes of records (values and bytes keys) kept at most
  uint64_t max_items = 0;       // entries kept at most
  uint32_t max_value_size = 0;  // largest value accepted, bytes
  Policy policy = Policy::kLru;
  bool manual_clock = false;                        // time moves only through advance_time()
  std::size_t log_capacity = 1 << 16;               // access-log ring slots
  double sample_rate = 1.0;                         // fraction of accesses logged
  uint32_t latency_period = kDefaultLatencyPeriod;  // 1 call in this many timed; 0: none
};

inline constexpr uint32_t kMaxKeyBytes = 65535;

// A key as the table sees it. Bytes keys point at caller memory that outlives the call.
struct KeyRef {
  uint64_t key = 0;                // the int key, or hash_bytes() of the bytes
  const uint8_t* bytes = nullptr;  // (len) host: a bytes key's data
  uint32_t len = 0;
  KeyKind kind = KeyKind::kInt;

  static KeyRef from_int(uint64_t k) noexcept { return KeyRef{k, nullptr, 0, KeyKind::kInt}; }
  static KeyRef from_bytes(const uint8_t* data, uint32_t len) noexcept {
    return KeyRef{hash_bytes(data, len), data, len, KeyKind::kBytes};
  }
};

// n keys: either all ints from one array (the numpy path) or prepared KeyRefs.
struct KeyBatch {
  std::size_t n = 0;
  const uint64_t* ints = nullptr;  // (n) host, or null
  const KeyRef* refs = nullptr;    // (n) host, used when ints is null

  KeyRef at(std::size_t i) const noexcept {
    return ints != nullptr ? KeyRef::from_int(ints[i]) : refs[i];
  }
};

struct ValueRef {
  const uint8_t* data = nullptr;  // (len) host
  uint32_t len = 0;
};

// Receives a found value while the entry is locked; must not call back into the table.
class ValueSink {
 public:
  virtual void take(const uint8_t* data, uint32_t len) = 0;  // (len) host

 protected:
  ~ValueSink() = default;
};

struct StatsSnapshot {
  uint64_t hits, misses, inserts, updates, deletes, evictions, expirations;
  uint64_t items, bytes_used, capacity_bytes, max_items, bytes_reserved, table_bytes;
  uint64_t events_logged, events_dropped, events_pending, log_capacity;
  uint64_t latency_period;
  std::array<LatencyHistogram, kNumOps> latency;  // sampled call durations, per Op
};

// The values of a get_into batch longer than their row: how many, and the one at the lowest
// index, for the error. A summary, not a per-key array, so a batch whose values fit (nearly
// every batch) needs no host buffer of n lengths.
struct TooLong {
  std::size_t count = 0;
  std::size_t first_index = 0;
  uint32_t first_length = 0;

  void note(std::size_t index, uint32_t length) noexcept {
    if (count++ == 0 || index < first_index) {
      first_index = index;
      first_length = length;
    }
  }
};

// Batches whose keys and values are already in device memory (the CUDA backend; see
// Table::device_ops). `stream` is the producer's CUDA stream (a cudaStream_t as an integer;
// 0 when none was given): the table orders its work after everything queued there. found
// and erased are host arrays; out and values are device arrays.
class DeviceBatchOps {
 public:
  // keys (n) device uint64; out (n, width) device, row-major; found (n) host. The outcome
  // is tallied on the device, so a batch whose values fit copies back `found` alone.
  // Same row rules as Table::get_into.
  virtual TooLong get_into_device(const uint64_t* keys, std::size_t n, uint8_t* out,
                                  std::size_t width, uint8_t* found, uintptr_t stream) = 0;
  virtual void contains_device(const uint64_t* keys, std::size_t n, uint8_t* out,
                               uintptr_t stream) = 0;  // out (n) host
  // values (n, width) device, row-major: row i is key i's value.
  virtual void put_device(const uint64_t* keys, std::size_t n, const uint8_t* values,
                          std::size_t width, uint64_t ttl_ns, uintptr_t stream) = 0;
  virtual std::size_t erase_device(const uint64_t* keys, std::size_t n, uint8_t* erased,
                                   uintptr_t stream) = 0;  // erased (n) host
  // The CUDA device index the table lives on.
  virtual int device_index() const noexcept = 0;

 protected:
  ~DeviceBatchOps() = default;
};

class Table {
 public:
  virtual ~Table() = default;

  virtual const char* backend() const noexcept = 0;
  virtual const TableConfig& config() const noexcept = 0;

  // Single keys. ttl_ns == 0 means the entry never expires.
  virtual bool get(const KeyRef& key, ValueSink& sink) = 0;
  virtual bool contains(const KeyRef& key) = 0;
  virtual void put(const KeyRef& key, ValueRef value, uint64_t ttl_ns) = 0;
  virtual bool erase(const KeyRef& key) = 0;
  // A prefetched value: stored like put, but ranked for eviction by the caller's confidence
  // in [0, 1] that it will be used (see InsertRank), and logged as AccessOp::kPrefetch.
  virtual void put_prefetched(const KeyRef& key, ValueRef value, uint64_t ttl_ns,
                              double confidence) = 0;

  // Batches.
  // data gets the found values back to back; offsets (n+1) host; found (n) host.
  virtual void get_batch(const KeyBatch& keys, std::vector<uint8_t>& data, int64_t* offsets,
                         uint8_t* found) = 0;
  // out (n, width) host, row-major; found (n) host. A value longer than width is not
  // copied: its row is zeroed and found is 0; the result counts such values.
  virtual TooLong get_into(const KeyBatch& keys, uint8_t* out, std::size_t width,
                           uint8_t* found) = 0;
  virtual void put_batch(const KeyBatch& keys, const ValueRef* values,
                         uint64_t ttl_ns) = 0;                                 // values (n) host
  virtual std::size_t erase_batch(const KeyBatch& keys, uint8_t* erased) = 0;  // erased (n) host
  virtual void contains_batch(const KeyBatch& keys, uint8_t* out) = 0;         // out (n) host

  // Bytes of capacity that an entry with this key and value length takes.
  virtual uint64_t footprint(KeyKind kind, uint32_t key_len, uint32_t value_len) const noexcept = 0;
  virtual void clear() = 0;
  virtual uint64_t size() const noexcept = 0;
  virtual StatsSnapshot stats() const = 0;

  // Access log.
  virtual std::size_t drain_events(AccessEvent* out, std::size_t max) = 0;  // out (max) host
  virtual void set_sample_rate(double rate) = 0;
  virtual double sample_rate() const noexcept = 0;

  // Latency sampling: period is 0 (off) or a power of two (the caller validates).
  virtual void set_latency_period(uint32_t period) = 0;
  virtual uint32_t latency_period() const noexcept = 0;

  // Manual clock only.
  // False, and no change, if the clock would pass 2^64 - 1 ns.
  virtual bool advance_time(uint64_t ns) = 0;
  virtual uint64_t now() const noexcept = 0;

  // Batches from device memory, or null when the backend keeps its table in host memory.
  virtual DeviceBatchOps* device_ops() noexcept { return nullptr; }
};

// The one factory. backend is "cpu" (always built) or "cuda" (built when nvcc was found;
// throws BackendError kUnavailable, with the reason, when it cannot be used here).
std::unique_ptr<Table> make_table(const std::string& backend, const TableConfig& config);

}  // namespace predis
