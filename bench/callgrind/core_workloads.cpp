// Fixed workloads on the C++ core for instruction counting under callgrind
// (bench/callgrind/check.py builds and runs this; docs/benchmarks.md explains the check).
//
//   core_workloads WORKLOAD     WORKLOAD: batch_get | batch_put | ring | evict_insert
//
// Each workload is one extern "C" function named workload_<name>; the check runs
// `valgrind --tool=callgrind --toggle-collect=workload_<name>`, so only the measured
// operations are counted, never the set-up. Everything is fixed: keys come from a seeded
// generator, the table runs on a manual clock, the access log is off, and the program is
// single-threaded, so the count is the same on every run of the same binary. Prints one
// JSON object with a checksum of what the workload saw; exits 1 when the checksum shows
// wrong results, 2 on bad arguments.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "predis/ring_buffer.hpp"
#include "predis/table.hpp"

namespace {

constexpr std::size_t kKeys = 1 << 15;       // keys held by the lookup tables
constexpr std::size_t kBatch = 1 << 12;      // keys per batch call
constexpr std::size_t kGetRounds = 8;        // batch_get: lookups = kGetRounds * kKeys
constexpr std::size_t kEvictItems = 1024;    // evict_insert: max_items
constexpr std::size_t kRingItems = 1 << 18;  // ring: items through the ring
constexpr std::size_t kRingBatch = 64;

// splitmix64: a fixed, seeded key stream (the same on every platform and run).
struct KeyStream {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
};

std::unique_ptr<predis::Table> make(std::size_t max_items, uint64_t capacity_bytes) {
  predis::TableConfig c;
  c.capacity_bytes = capacity_bytes;
  c.max_items = max_items;
  c.max_value_size = 1024;
  c.manual_clock = true;  // no clock reads: time moves only when told
  c.sample_rate = 0.0;    // the access log is measured by the Python ratio pairs
  return predis::make_table("cpu", c);
}

std::vector<uint64_t> sequential_keys(std::size_t n, uint64_t first) {
  std::vector<uint64_t> keys(n);
  for (std::size_t i = 0; i < n; ++i) keys[i] = first + i;
  return keys;
}

// Batches of `width`-byte values, value i filled with the low byte of key i.
void put_all(predis::Table& t, const std::vector<uint64_t>& keys, uint32_t width,
             std::vector<uint8_t>& storage) {
  storage.assign(keys.size() * width, 0);
  std::vector<predis::ValueRef> values(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    std::memset(&storage[i * width], static_cast<int>(keys[i] & 0xff), width);
    values[i] = predis::ValueRef{&storage[i * width], width};
  }
  for (std::size_t i = 0; i < keys.size(); i += kBatch) {
    const std::size_t n = keys.size() - i < kBatch ? keys.size() - i : kBatch;
    t.put_batch(predis::KeyBatch{n, &keys[i], nullptr}, &values[i], 0);
  }
}

struct Result {
  uint64_t checksum = 0;
  uint64_t expected = 0;
};

}  // namespace

// The measured regions. noinline and C linkage give callgrind one stable name for each.
extern "C" __attribute__((noinline)) void workload_batch_get(predis::Table& t,
                                                             const std::vector<uint64_t>& keys,
                                                             Result& r) {
  std::vector<uint8_t> out(kBatch * 8);
  std::vector<uint8_t> found(kBatch);
  for (std::size_t i = 0; i < keys.size(); i += kBatch) {
    t.get_into(predis::KeyBatch{kBatch, &keys[i], nullptr}, out.data(), 8, found.data());
    for (std::size_t j = 0; j < kBatch; ++j) r.checksum += found[j] ? out[j * 8] : 1000;
  }
}

extern "C" __attribute__((noinline)) void workload_batch_put(predis::Table& t,
                                                             const std::vector<uint64_t>& keys,
                                                             std::vector<uint8_t>& storage) {
  put_all(t, keys, 32, storage);  // inserts
  put_all(t, keys, 32, storage);  // then updates of the same keys
}

extern "C" __attribute__((noinline)) void workload_evict_insert(predis::Table& t,
                                                                const std::vector<uint64_t>& keys,
                                                                std::vector<uint8_t>& storage) {
  put_all(t, keys, 8, storage);
}

extern "C" __attribute__((noinline)) void workload_ring(predis::SpscRing<uint64_t>& ring,
                                                        Result& r) {
  std::vector<uint64_t> in(kRingBatch);
  std::vector<uint64_t> out(kRingBatch);
  uint64_t next = 0;
  // Batches, then single items, producer and consumer taking turns on one thread.
  while (next < kRingItems / 2) {
    for (std::size_t j = 0; j < kRingBatch; ++j) in[j] = next + j;
    next += ring.try_push_batch(in.data(), kRingBatch);
    const std::size_t got = ring.pop_batch(out.data(), kRingBatch);
    for (std::size_t j = 0; j < got; ++j) r.checksum += out[j];
  }
  uint64_t item = 0;
  for (; next < kRingItems; ++next) {
    ring.try_push(next);
    if (ring.try_pop(item)) r.checksum += item;
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: core_workloads batch_get|batch_put|ring|evict_insert\n");
    return 2;
  }
  const std::string w = argv[1];
  Result r;
  uint64_t items = 0;
  if (w == "batch_get") {
    auto t = make(kKeys, 64ULL << 20);
    std::vector<uint8_t> storage;
    put_all(*t, sequential_keys(kKeys, 0), 8, storage);
    KeyStream s{1};
    std::vector<uint64_t> lookups(kGetRounds * kKeys);
    for (auto& k : lookups) {
      k = s.next() % kKeys;
      r.expected += k & 0xff;
    }
    workload_batch_get(*t, lookups, r);
    items = t->size();
  } else if (w == "batch_put") {
    auto t = make(kKeys, 64ULL << 20);
    KeyStream s{2};
    std::vector<uint64_t> keys(kKeys);
    for (auto& k : keys) k = s.next();
    std::vector<uint8_t> storage;
    workload_batch_put(*t, keys, storage);
    items = t->size();
    r.checksum = items;
    r.expected = kKeys;
  } else if (w == "evict_insert") {
    auto t = make(kEvictItems, 64ULL << 20);
    std::vector<uint8_t> storage;
    workload_evict_insert(*t, sequential_keys(kKeys, 1), storage);
    items = t->size();
    r.checksum = items;
    r.expected = kEvictItems;
    const predis::StatsSnapshot st = t->stats();
    if (st.evictions != kKeys - kEvictItems) r.checksum = 0;  // every insert past the cap evicts
  } else if (w == "ring") {
    predis::SpscRing<uint64_t> ring(4096);
    workload_ring(ring, r);
    r.expected = (uint64_t{kRingItems} * (kRingItems - 1)) / 2;
    items = ring.size_approx();
  } else {
    std::fprintf(stderr, "core_workloads: unknown workload '%s'\n", w.c_str());
    return 2;
  }
  const bool ok = r.checksum == r.expected;
  std::printf(
      "{\"workload\": \"%s\", \"checksum\": %llu, \"expected\": %llu, \"items\": %llu, "
      "\"ok\": %s}\n",
      w.c_str(), static_cast<unsigned long long>(r.checksum),
      static_cast<unsigned long long>(r.expected), static_cast<unsigned long long>(items),
      ok ? "true" : "false");
  return ok ? 0 : 1;
}
