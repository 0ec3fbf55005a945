// A device-side prototype of the CUDA table (issue 3), kept in bench/ until the backend
// ships: it drives the shared PREDIS_HD bucket logic (csrc/predis/bucket.hpp) from kernels,
// checks the results against the same logic run sequentially on the host, and measures
// find and insert_or_assign throughput on device-resident uint64 keys with 8-byte values.
//
// Build and run (on a CUDA machine):
//   nvcc -O3 -std=c++17 -arch=sm_90 -Icsrc bench/gpu/gpu_table_bench.cu -o gtb && ./gtb
// Output: one JSON object on stdout; exit status 1 if a check fails.
#include <algorithm>
#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "predis/bucket.hpp"

namespace cg = cooperative_groups;
using predis::Bucket;
using predis::InsertPlan;
using predis::KeyKind;
using predis::Placement;

#define CUDA_CHECK(x)                                                                     \
  do {                                                                                    \
    cudaError_t rc_ = (x);                                                                \
    if (rc_ != cudaSuccess) {                                                             \
      std::fprintf(stderr, "CUDA error %s at %s:%d\n", cudaGetErrorString(rc_), __FILE__, \
                   __LINE__);                                                             \
      std::exit(2);                                                                       \
    }                                                                                     \
  } while (0)

constexpr int kTile = 16;  // one lane per slot of a bucket
static_assert(kTile == predis::kSlotsPerBucket, "a tile covers a bucket");

// ---- device ----

__device__ void lock_word(uint32_t* w) {
  while (atomicCAS(w, 0u, 1u) != 0u) __nanosleep(32);
  __threadfence();
}
__device__ void unlock_word(uint32_t* w) {
  __threadfence();
  atomicExch(w, 0u);
}

// A tile of 16 lanes probes each candidate bucket, one slot per lane (the (first, step) form
// of find_slot), and the lowest matching lane writes the value.
__global__ void find_kernel(Bucket* buckets, uint64_t mask, const uint64_t* keys, uint64_t n,
                            uint64_t* values, uint8_t* found) {
  auto tile = cg::tiled_partition<kTile>(cg::this_thread_block());
  const uint64_t i = (uint64_t{blockIdx.x} * blockDim.x + threadIdx.x) / kTile;
  if (i >= n) return;  // a whole tile shares i, so tiles leave together
  const uint64_t key = keys[i];
  const Placement p = predis::place(key, KeyKind::kInt, mask);
  const int lane = static_cast<int>(tile.thread_rank());
  const uint64_t candidates[2] = {p.b1, p.b2};
  for (int c = 0; c < (p.b1 == p.b2 ? 1 : 2); ++c) {
    const Bucket& b = buckets[candidates[c]];
    const int s =
        predis::find_slot(b, p.digest, KeyKind::kInt, key, predis::IntKeyEq{}, lane, kTile);
    const unsigned hits = tile.ballot(s >= 0);
    if (hits != 0) {
      if (lane == __ffs(hits) - 1) {
        values[i] = b.slots[s].handle;  // inline value word
        found[i] = 1;
      }
      return;
    }
  }
  if (lane == 0) found[i] = 0;
}

// One thread per key: lock both candidates in index order, then the shared host/device
// step insert_into_pair (the CPU backend's own insert). Values are 8-byte inline words.
__global__ void insert_kernel(Bucket* buckets, uint64_t mask, const uint64_t* keys,
                              const uint64_t* values, uint64_t n, uint64_t tick,
                              unsigned long long* evictions) {
  const uint64_t i = uint64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const uint64_t key = keys[i];
  const Placement p = predis::place(key, KeyKind::kInt, mask);
  Bucket& b1 = buckets[p.b1];
  Bucket& b2 = buckets[p.b2];
  uint32_t* first = p.b1 <= p.b2 ? &b1.lock : &b2.lock;
  uint32_t* second = p.b1 <= p.b2 ? &b2.lock : &b1.lock;
  lock_word(first);
  if (p.b1 != p.b2) lock_word(second);
  const predis::PairInsertResult r = predis::insert_into_pair(
      b1, b2, p.digest, KeyKind::kInt, key, predis::IntKeyEq{},
      predis::make_form(KeyKind::kInt, true, 8), values[i], 0, 0, tick + i, predis::Policy::kLru);
  if (r.evicted) atomicAdd(evictions, 1ull);
  if (p.b1 != p.b2) unlock_word(second);
  unlock_word(first);
}

// A tile of 16 lanes per key: lane 0 takes the locks; every lane then reads one slot of a
// bucket, so the 512 bytes of slots are read in one coalesced sweep instead of 16 serial
// reads, and the plan is reduced across lanes. Same decisions as the one-thread version.
__device__ uint64_t plan_rank(const InsertPlan& p) {
  // Lower is better: a free slot, then an expired entry, then the lowest score.
  if (p.slot < 0) return ~uint64_t{0};
  if (!p.occupied) return 0;
  const uint64_t score = p.score < (uint64_t{1} << 61) ? p.score : (uint64_t{1} << 61) - 1;
  return (p.expired ? uint64_t{1} << 61 : uint64_t{2} << 61) | score;
}

template <class Tile>
__device__ InsertPlan tile_plan(const Tile& tile, const Bucket& b, int lane) {
  const InsertPlan mine = predis::plan_insert(b, 0, lane, kTile);
  const uint64_t rank = plan_rank(mine);
  const uint64_t best = cg::reduce(tile, rank, cg::less<uint64_t>());
  const unsigned who = tile.ballot(rank == best);
  const int src = __ffs(who) - 1;
  InsertPlan out;
  out.slot = tile.shfl(mine.slot, src);
  out.occupied = tile.shfl(mine.occupied, src);
  out.expired = tile.shfl(mine.expired, src);
  out.score = tile.shfl(mine.score, src);
  return out;
}

__global__ void insert_tile_kernel(Bucket* buckets, uint64_t mask, const uint64_t* keys,
                                   const uint64_t* values, uint64_t n, uint64_t tick,
                                   unsigned long long* evictions) {
  auto tile = cg::tiled_partition<kTile>(cg::this_thread_block());
  const uint64_t i = (uint64_t{blockIdx.x} * blockDim.x + threadIdx.x) / kTile;
  if (i >= n) return;
  const int lane = static_cast<int>(tile.thread_rank());
  const uint64_t key = keys[i];
  const Placement p = predis::place(key, KeyKind::kInt, mask);
  Bucket& b1 = buckets[p.b1];
  Bucket& b2 = buckets[p.b2];
  uint32_t* first = p.b1 <= p.b2 ? &b1.lock : &b2.lock;
  uint32_t* second = p.b1 <= p.b2 ? &b2.lock : &b1.lock;
  if (lane == 0) {
    lock_word(first);
    if (p.b1 != p.b2) lock_word(second);
  }
  tile.sync();
  const uint8_t form = predis::make_form(KeyKind::kInt, true, 8);
  Bucket* home = &b1;
  int s = predis::find_slot(b1, p.digest, KeyKind::kInt, key, predis::IntKeyEq{}, lane, kTile);
  unsigned hit = tile.ballot(s >= 0);
  if (hit == 0 && p.b1 != p.b2) {
    home = &b2;
    s = predis::find_slot(b2, p.digest, KeyKind::kInt, key, predis::IntKeyEq{}, lane, kTile);
    hit = tile.ballot(s >= 0);
  }
  if (hit != 0) {
    if (lane == __ffs(hit) - 1) {
      home->slots[s].handle = values[i];
      home->forms[s] = form;
      home->slots[s].score =
          predis::score_on_hit(predis::Policy::kLru, home->slots[s].score, tick + i);
    }
  } else {
    InsertPlan plan = tile_plan(tile, b1, lane);
    Bucket* target = &b1;
    if (p.b1 != p.b2 && (plan.occupied || b1.count >= predis::kSpillThreshold)) {
      const InsertPlan plan2 = tile_plan(tile, b2, lane);
      if (predis::prefer_second(plan, b1.count, plan2, b2.count)) {
        plan = plan2;
        target = &b2;
      }
    }
    if (lane == 0) {
      if (plan.occupied) atomicAdd(evictions, 1ull);
      predis::fill_slot(*target, plan.slot, p.digest, form, key,
                        predis::score_on_insert(predis::Policy::kLru, tick + i), values[i], 0);
    }
  }
  tile.sync();
  if (lane == 0) {
    if (p.b1 != p.b2) unlock_word(second);
    unlock_word(first);
  }
}

// ---- host reference: the same steps, one key at a time ----

struct HostTable {
  explicit HostTable(uint64_t buckets) : b(buckets), mask(buckets - 1) {}
  std::vector<Bucket> b;
  uint64_t mask;
  uint64_t evictions = 0;

  void insert(uint64_t key, uint64_t value, uint64_t tick) {
    const Placement p = predis::place(key, KeyKind::kInt, mask);
    const predis::PairInsertResult r = predis::insert_into_pair(
        b[p.b1], b[p.b2], p.digest, KeyKind::kInt, key, predis::IntKeyEq{},
        predis::make_form(KeyKind::kInt, true, 8), value, 0, 0, tick, predis::Policy::kLru);
    evictions += r.evicted ? 1 : 0;
  }
  bool find(uint64_t key, uint64_t* value) const {
    const Placement p = predis::place(key, KeyKind::kInt, mask);
    const predis::IntKeyEq any;
    for (uint64_t idx : {p.b1, p.b2}) {
      const int s = predis::find_slot(b[idx], p.digest, KeyKind::kInt, key, any);
      if (s >= 0) {
        *value = b[idx].slots[s].handle;
        return true;
      }
    }
    return false;
  }
};

// ---- driver ----

struct DeviceTable {
  explicit DeviceTable(uint64_t buckets) : n(buckets), mask(buckets - 1) {
    CUDA_CHECK(cudaMalloc(&b, n * sizeof(Bucket)));
    CUDA_CHECK(cudaMemset(b, 0, n * sizeof(Bucket)));
    CUDA_CHECK(cudaMalloc(&evictions, sizeof(unsigned long long)));
    CUDA_CHECK(cudaMemset(evictions, 0, sizeof(unsigned long long)));
  }
  ~DeviceTable() {
    cudaFree(b);
    cudaFree(evictions);
  }
  void insert(const uint64_t* d_keys, const uint64_t* d_values, uint64_t count, uint64_t tick) {
    const int block = 256;
    if (tiled) {
      const uint64_t threads = count * kTile;
      insert_tile_kernel<<<static_cast<unsigned>((threads + block - 1) / block), block>>>(
          b, mask, d_keys, d_values, count, tick, evictions);
    } else {
      insert_kernel<<<static_cast<unsigned>((count + block - 1) / block), block>>>(
          b, mask, d_keys, d_values, count, tick, evictions);
    }
  }
  bool tiled = false;  // insert with a tile of 16 lanes per key instead of one thread
  void find(const uint64_t* d_keys, uint64_t count, uint64_t* d_values, uint8_t* d_found) {
    const int block = 256;
    const uint64_t threads = count * kTile;
    find_kernel<<<static_cast<unsigned>((threads + block - 1) / block), block>>>(
        b, mask, d_keys, count, d_values, d_found);
  }
  unsigned long long eviction_count() const {
    unsigned long long e = 0;
    CUDA_CHECK(cudaMemcpy(&e, evictions, sizeof e, cudaMemcpyDeviceToHost));
    return e;
  }
  Bucket* b = nullptr;
  uint64_t n;
  uint64_t mask;
  unsigned long long* evictions = nullptr;
};

template <class T>
struct DeviceArray {
  explicit DeviceArray(uint64_t count) : n(count) { CUDA_CHECK(cudaMalloc(&p, n * sizeof(T))); }
  ~DeviceArray() { cudaFree(p); }
  void upload(const std::vector<T>& v) {
    CUDA_CHECK(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download(uint64_t count) const {
    std::vector<T> v(count);
    CUDA_CHECK(cudaMemcpy(v.data(), p, count * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
  }
  T* p = nullptr;
  uint64_t n;
};

uint64_t value_of(uint64_t key, uint64_t version) {
  return predis::fmix64(key) ^ (version << 56);
}

std::vector<uint64_t> unique_keys(uint64_t n, uint64_t seed) {
  // fmix64 is a bijection, so distinct inputs give distinct keys.
  std::vector<uint64_t> k(n);
  for (uint64_t i = 0; i < n; ++i) k[i] = predis::fmix64(i + (seed << 40));
  return k;
}

int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "CHECK FAILED: %s\n", what);
  }
}

// Differential test: the same inserts through the kernels and through the host reference.
std::string differential(bool tiled) {
  const uint64_t buckets = 1 << 12;  // 65,536 slots
  const uint64_t n = 30000;          // ~46% load: no bucket should overflow
  DeviceTable dev(buckets);
  dev.tiled = tiled;
  HostTable host(buckets);
  auto keys = unique_keys(n, 1);
  std::vector<uint64_t> vals(n);
  for (uint64_t i = 0; i < n; ++i) vals[i] = value_of(keys[i], 1);
  DeviceArray<uint64_t> dk(n), dv(n), dout(n);
  DeviceArray<uint8_t> dfound(n);
  dk.upload(keys);
  dv.upload(vals);
  dev.insert(dk.p, dv.p, n, 1);
  for (uint64_t i = 0; i < n; ++i) host.insert(keys[i], vals[i], 1 + i);
  // Update every third key.
  std::vector<uint64_t> upd_keys, upd_vals;
  for (uint64_t i = 0; i < n; i += 3) {
    upd_keys.push_back(keys[i]);
    upd_vals.push_back(value_of(keys[i], 2));
  }
  DeviceArray<uint64_t> uk(upd_keys.size()), uv(upd_keys.size());
  uk.upload(upd_keys);
  uv.upload(upd_vals);
  dev.insert(uk.p, uv.p, upd_keys.size(), n + 1);
  for (size_t i = 0; i < upd_keys.size(); ++i) host.insert(upd_keys[i], upd_vals[i], n + 1 + i);
  // Look up all keys plus as many absent ones.
  auto probe = keys;
  auto absent = unique_keys(n, 2);
  probe.insert(probe.end(), absent.begin(), absent.end());
  DeviceArray<uint64_t> pk(probe.size()), pv(probe.size());
  DeviceArray<uint8_t> pf(probe.size());
  pk.upload(probe);
  dev.find(pk.p, probe.size(), pv.p, pf.p);
  CUDA_CHECK(cudaDeviceSynchronize());
  auto got_v = pv.download(probe.size());
  auto got_f = pf.download(probe.size());
  uint64_t mismatches = 0;
  for (size_t i = 0; i < probe.size(); ++i) {
    uint64_t hv = 0;
    const bool hf = host.find(probe[i], &hv);
    if (hf != (got_f[i] != 0) || (hf && hv != got_v[i])) ++mismatches;
  }
  check(mismatches == 0, "device and host disagree on find results");
  check(dev.eviction_count() == 0 && host.evictions == 0, "evictions at 46% load");
  // Overfill: 3x the slots; every found value must be that key's last value.
  const uint64_t m = 3 * buckets * predis::kSlotsPerBucket;
  auto more = unique_keys(m, 3);
  std::vector<uint64_t> more_v(m);
  for (uint64_t i = 0; i < m; ++i) more_v[i] = value_of(more[i], 1);
  DeviceArray<uint64_t> mk(m), mv(m), mo(m);
  DeviceArray<uint8_t> mf(m);
  mk.upload(more);
  mv.upload(more_v);
  dev.insert(mk.p, mv.p, m, 2 * n);
  dev.find(mk.p, m, mo.p, mf.p);
  CUDA_CHECK(cudaDeviceSynchronize());
  auto mo_h = mo.download(m);
  auto mf_h = mf.download(m);
  uint64_t present = 0, wrong = 0;
  for (uint64_t i = 0; i < m; ++i) {
    if (mf_h[i]) {
      ++present;
      if (mo_h[i] != more_v[i]) ++wrong;
    }
  }
  check(wrong == 0, "a found value is not its key's value after overfill");
  check(present <= buckets * predis::kSlotsPerBucket, "more entries than slots");
  std::vector<Bucket> snapshot(buckets);
  CUDA_CHECK(cudaMemcpy(snapshot.data(), dev.b, buckets * sizeof(Bucket), cudaMemcpyDeviceToHost));
  uint64_t counted = 0, locked = 0;
  for (const Bucket& b : snapshot) {
    int used = 0;
    for (int s = 0; s < predis::kSlotsPerBucket; ++s) used += predis::slot_used(b, s) ? 1 : 0;
    counted += (used == static_cast<int>(b.count)) ? 0 : 1;
    locked += b.lock != 0 ? 1 : 0;
  }
  check(counted == 0, "bucket counts disagree with occupied slots");
  check(locked == 0, "a bucket lock was left held");
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"keys\": %llu, \"probes\": %zu, \"mismatches\": %llu, \"overfill_keys\": %llu, "
                "\"overfill_present\": %llu, \"overfill_wrong_values\": %llu, "
                "\"overfill_evictions\": %llu, \"bad_counts\": %llu, \"locks_held\": %llu}",
                (unsigned long long)n, probe.size(), (unsigned long long)mismatches,
                (unsigned long long)m, (unsigned long long)present, (unsigned long long)wrong,
                dev.eviction_count(), (unsigned long long)counted, (unsigned long long)locked);
  return buf;
}

// Milliseconds that the GPU work `f` enqueues takes, between two events.
template <class F>
float timed_ms(cudaEvent_t a, cudaEvent_t b, F&& f) {
  CUDA_CHECK(cudaEventRecord(a));
  f();
  CUDA_CHECK(cudaEventRecord(b));
  CUDA_CHECK(cudaEventSynchronize(b));
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
  return ms;
}

float median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Throughput at load factor 0.9 of 2^26 slots, for batches from 2^20 to 2^26 keys.
std::string throughput(bool tiled, double* copy_gbps) {
  const uint64_t buckets = uint64_t{1} << 22;  // 2^26 slots, 2.4 GB of buckets
  const uint64_t slots = buckets * predis::kSlotsPerBucket;
  const uint64_t resident = slots * 9 / 10;
  DeviceTable dev(buckets);
  dev.tiled = tiled;
  auto keys = unique_keys(resident, 4);
  std::vector<uint64_t> vals(resident);
  for (uint64_t i = 0; i < resident; ++i) vals[i] = value_of(keys[i], 1);
  DeviceArray<uint64_t> dk(resident), dv(resident), dout(resident);
  DeviceArray<uint8_t> df(resident);
  dk.upload(keys);
  dv.upload(vals);
  dev.insert(dk.p, dv.p, resident, 1);
  CUDA_CHECK(cudaDeviceSynchronize());
  const unsigned long long fill_evictions = dev.eviction_count();
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  // The copy ceiling: a device-to-device copy of the key array, counted as read + write.
  std::vector<float> copy_ms;
  for (int r = 0; r < 5; ++r) {
    copy_ms.push_back(timed_ms(a, b, [&] {
      CUDA_CHECK(cudaMemcpy(dout.p, dk.p, resident * 8, cudaMemcpyDeviceToDevice));
    }));
  }
  *copy_gbps = 2.0 * resident * 8 / (median(copy_ms) * 1e-3) / 1e9;
  std::string out = "[";
  for (int lg = 20; lg <= 26; lg += 2) {
    const uint64_t batch = std::min<uint64_t>(uint64_t{1} << lg, resident);
    std::vector<float> find_ms, upd_ms;
    for (int r = 0; r < 5; ++r) {
      find_ms.push_back(timed_ms(a, b, [&] { dev.find(dk.p, batch, dout.p, df.p); }));
      upd_ms.push_back(timed_ms(a, b, [&] { dev.insert(dk.p, dv.p, batch, 10 + r); }));
    }
    CUDA_CHECK(cudaGetLastError());
    auto found = df.download(batch);
    const uint64_t hits = static_cast<uint64_t>(std::count(found.begin(), found.end(), 1));
    const double f = batch / (median(find_ms) * 1e-3);
    const double u = batch / (median(upd_ms) * 1e-3);
    // Bytes a find moves at least: the key, the bucket header line, one slot, the value out.
    const double find_bytes = 8 + 64 + 32 + 8 + 1;
    char buf[400];
    std::snprintf(buf, sizeof buf,
                  "%s{\"batch\": %llu, \"find_keys_per_s\": %.4g, \"find_hit_fraction\": %.6f, "
                  "\"find_bandwidth_fraction\": %.3f, \"insert_or_assign_keys_per_s\": %.4g}",
                  lg == 20 ? "" : ", ", (unsigned long long)batch, f, double(hits) / batch,
                  f * find_bytes / (*copy_gbps * 1e9), u);
    out += buf;
  }
  // Inserts of new keys into the full table: every one evicts (LRU within its buckets).
  const uint64_t fresh_n = uint64_t{1} << 24;
  auto fresh = unique_keys(fresh_n, 5);
  DeviceArray<uint64_t> fk(fresh_n);
  fk.upload(fresh);
  std::vector<float> ins_ms;
  for (int r = 0; r < 3; ++r) {
    auto f2 = unique_keys(fresh_n, 6 + r);
    fk.upload(f2);
    ins_ms.push_back(timed_ms(a, b, [&] { dev.insert(fk.p, dv.p, fresh_n, 100 + r); }));
  }
  char tail[300];
  std::snprintf(
      tail, sizeof tail,
      "], \"fill_evictions_at_0.9\": %llu, \"insert_new_with_eviction_keys_per_s\": %.4g, "
      "\"insert_new_batch\": %llu",
      fill_evictions, fresh_n / (median(ins_ms) * 1e-3), (unsigned long long)fresh_n);
  out += tail;
  return out;
}

int main() {
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  double copy_gbps = 0;
  std::string out = std::string("{\"device\": \"") + prop.name + "\"";
  for (const bool tiled : {false, true}) {
    const char* name = tiled ? "tile_insert" : "thread_insert";
    const std::string diff = differential(tiled);
    const std::string tp = throughput(tiled, &copy_gbps);
    out +=
        std::string(", \"") + name + "\": {\"differential\": " + diff + ", \"rows\": " + tp + "}";
  }
  std::printf("%s, \"d2d_copy_gbps\": %.1f, \"failures\": %d}\n", out.c_str(), copy_gbps, failures);
  return failures == 0 ? 0 : 1;
}
