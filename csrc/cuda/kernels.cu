// The CUDA backend's kernels: launch, memory and copy code around predis/bucket.hpp. The
// probe, plan, insert, evict and expiry decisions are the shared PREDIS_HD functions the CPU
// backend runs; what is here is who runs them (a tile of lanes or one thread per key), the
// bucket lock words (CAS), and moving bytes.
#include <algorithm>
#include <cooperative_groups.h>
#include <cub/device/device_scan.cuh>

#include "cuda/check.hpp"
#include "cuda/kernels.hpp"
#include "predis/arena.hpp"
#include "predis/tile_plan.hpp"

namespace cg = cooperative_groups;

namespace predis::cuda {
namespace {

constexpr int kTile = kSlotsPerBucket;  // one lane per slot of a bucket
constexpr int kBlock = 256;

unsigned blocks_for(uint64_t threads) {
  return static_cast<unsigned>((threads + kBlock - 1) / kBlock);
}

__device__ void lock_word(uint32_t* w) {
  while (atomicCAS(w, 0u, 1u) != 0u) __nanosleep(32);
  __threadfence();
}
__device__ void unlock_word(uint32_t* w) {
  __threadfence();
  atomicExch(w, 0u);
}

__device__ const RecordHeader* record_of(uint64_t handle) {
  return reinterpret_cast<const RecordHeader*>(static_cast<uintptr_t>(handle));
}

// The full-key check of a bytes key against the copy stored in its record.
struct BytesKeyEq {
  const uint8_t* bytes;
  uint32_t len;
  __device__ bool operator()(const Slot& s) const {
    const RecordHeader* h = record_of(s.handle);
    if (h->key_len != len) return false;
    const auto* stored = reinterpret_cast<const uint8_t*>(h + 1);
    for (uint32_t i = 0; i < len; ++i) {
      if (stored[i] != bytes[i]) return false;
    }
    return true;
  }
};

// The tile's best candidate: a butterfly of better_of over the 16 lanes.
template <class Tile>
__device__ TileBest tile_min(const Tile& tile, TileBest mine) {
  for (int d = kTile / 2; d > 0; d /= 2) {
    const TileBest other{tile.shfl_xor(mine.slot, d), tile.shfl_xor(mine.score, d)};
    mine = better_of(mine, other);
  }
  return mine;
}

__device__ KeyKind kind_at(const DevKeys& k, uint64_t i) {
  return k.kinds == nullptr ? KeyKind::kInt : static_cast<KeyKind>(k.kinds[i]);
}

// Calls f with the full-key check for key i (IntKeyEq for int keys).
template <class F>
__device__ auto with_key_eq(const DevKeys& k, uint64_t i, F&& f) {
  if (kind_at(k, i) == KeyKind::kInt) return f(IntKeyEq{});
  const uint64_t begin = k.byte_offsets[i];
  return f(BytesKeyEq{k.bytes + begin, static_cast<uint32_t>(k.byte_offsets[i + 1] - begin)});
}

__device__ uint64_t record_bytes(uint64_t word, uint8_t form) {
  if (form_inline(form)) return 0;
  const RecordHeader* h = record_of(word);
  return record_size(h->key_len, h->value_len);
}

__device__ uint32_t value_length(uint64_t word, uint8_t form) {
  return form_inline(form) ? form_inline_len(form) : record_of(word)->value_len;
}

__device__ const uint8_t* value_bytes(const uint64_t& word, uint8_t form) {
  if (form_inline(form)) return reinterpret_cast<const uint8_t*>(&word);
  const RecordHeader* h = record_of(word);
  return reinterpret_cast<const uint8_t*>(h + 1) + h->key_len;
}

// An access at `tick` on a score that other lanes of the batch may touch too.
__device__ void touch_score(uint64_t* score, Policy policy, uint64_t tick) {
  auto* word = reinterpret_cast<unsigned long long*>(score);
  unsigned long long old = *word;
  for (;;) {
    const unsigned long long next = score_on_hit(policy, old, tick);
    const unsigned long long seen = atomicCAS(word, old, next);
    if (seen == old) return;
    old = seen;
  }
}

// Under the lock of bucket b: drop key i's entry if it is there and expired. Returns the
// status and the dropped value.
template <class Eq>
__device__ uint8_t drop_if_expired(Bucket& b, uint8_t digest, KeyKind kind, uint64_t key,
                                   const Eq& eq, uint64_t now, uint64_t* word, uint8_t* form) {
  lock_word(&b.lock);
  uint8_t status = kMiss;
  const int s = find_slot_all(b, digest, kind, key, eq);
  if (s >= 0 && slot_expired(b.slots[s], now)) {
    *word = b.slots[s].handle;
    *form = b.forms[s];
    clear_slot(b, s);
    status = kExpired;
  } else if (s >= 0) {
    status = kHit;  // replaced by a live entry meanwhile (not within one lookup batch)
    *word = b.slots[s].handle;
    *form = b.forms[s];
  }
  unlock_word(&b.lock);
  return status;
}

__global__ void lookup_kernel(DevTable t, DevKeys k, uint64_t now, uint64_t tick, bool touch,
                              Found out) {
  auto tile = cg::tiled_partition<kTile>(cg::this_thread_block());
  const uint64_t i = (uint64_t{blockIdx.x} * blockDim.x + threadIdx.x) / kTile;
  if (i >= k.n) return;  // a whole tile shares i, so tiles leave together
  const int lane = static_cast<int>(tile.thread_rank());
  const KeyKind kind = kind_at(k, i);
  const uint64_t key = k.keys[i];
  const Placement p = place(key, kind, t.mask);
  with_key_eq(k, i, [&](const auto& eq) {
    const uint64_t candidates[2] = {p.b1, p.b2};
    for (int c = 0; c < (p.b1 == p.b2 ? 1 : 2); ++c) {
      Bucket& b = t.buckets[candidates[c]];
      const int s = find_slot(b, p.digest, kind, key, eq, lane, kTile);
      const unsigned hits = tile.ballot(s >= 0);
      if (hits == 0) continue;
      if (lane == first_lane(hits)) {
        uint64_t word = b.slots[s].handle;
        uint8_t form = b.forms[s];
        uint8_t status = kHit;
        if (slot_expired(b.slots[s], now)) {
          status = drop_if_expired(b, p.digest, kind, key, eq, now, &word, &form);
        } else if (touch) {
          touch_score(&b.slots[s].score, t.policy, tick + i);
        }
        out.status[i] = status;
        out.word[i] = word;
        out.form[i] = form;
        out.rsize[i] = status == kExpired ? record_bytes(word, form) : 0;
        if (out.length != nullptr) out.length[i] = status == kHit ? value_length(word, form) : 0;
      }
      return 0;
    }
    if (lane == 0) {
      out.status[i] = kMiss;
      if (out.length != nullptr) out.length[i] = 0;
    }
    return 0;
  });
}

__global__ void insert_kernel(DevTable t, DevKeys k, const uint64_t* words, const uint8_t* forms,
                              uint8_t form_all, uint64_t expiry, uint64_t now, uint64_t tick,
                              bool prefetched, uint64_t demote, Inserted out) {
  const uint64_t i = uint64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (i >= k.n) return;
  const KeyKind kind = kind_at(k, i);
  const uint64_t key = k.keys[i];
  const Placement p = place(key, kind, t.mask);
  Bucket& b1 = t.buckets[p.b1];
  Bucket& b2 = t.buckets[p.b2];
  // Both candidates, locked in index order (as the CPU backend's PairLock), so two inserting
  // threads never wait on each other in a cycle.
  uint32_t* first = p.b1 <= p.b2 ? &b1.lock : &b2.lock;
  uint32_t* second = p.b1 <= p.b2 ? &b2.lock : &b1.lock;
  lock_word(first);
  if (p.b1 != p.b2) lock_word(second);
  const uint8_t form = forms == nullptr ? form_all : forms[i];
  const PairInsertResult r = with_key_eq(k, i, [&](const auto& eq) {
    return prefetched ? insert_into_pair<true>(b1, b2, p.digest, kind, key, eq, form, words[i],
                                               expiry, now, tick + i, t.policy, demote)
                      : insert_into_pair<false>(b1, b2, p.digest, kind, key, eq, form, words[i],
                                                expiry, now, tick + i, t.policy);
  });
  if (p.b1 != p.b2) unlock_word(second);
  unlock_word(first);
  out.flags[i] = static_cast<uint8_t>((r.updated ? kUpdated : 0) | (r.displaced ? kDisplaced : 0) |
                                      (r.expired ? kWasExpired : 0) | (r.evicted ? kEvicted : 0) |
                                      (r.skipped ? kSkipped : 0));
  out.old_word[i] = r.old_handle;
  out.old_form[i] = r.old_form;
  out.old_rsize[i] = r.displaced ? record_bytes(r.old_handle, r.old_form) : 0;
}

__global__ void erase_kernel(DevTable t, DevKeys k, uint64_t now, Found out) {
  auto tile = cg::tiled_partition<kTile>(cg::this_thread_block());
  const uint64_t i = (uint64_t{blockIdx.x} * blockDim.x + threadIdx.x) / kTile;
  if (i >= k.n) return;
  const int lane = static_cast<int>(tile.thread_rank());
  const KeyKind kind = kind_at(k, i);
  const uint64_t key = k.keys[i];
  const Placement p = place(key, kind, t.mask);
  with_key_eq(k, i, [&](const auto& eq) {
    const uint64_t candidates[2] = {p.b1, p.b2};
    for (int c = 0; c < (p.b1 == p.b2 ? 1 : 2); ++c) {
      Bucket& b = t.buckets[candidates[c]];
      // The lanes probe without the lock to find the bucket; the removal itself re-locates
      // the key under the lock (a duplicate key in the batch may have removed it already).
      const unsigned hits = tile.ballot(find_slot(b, p.digest, kind, key, eq, lane, kTile) >= 0);
      if (hits == 0) continue;
      if (lane == 0) {
        lock_word(&b.lock);
        uint8_t status = kMiss;
        const int s = find_slot_all(b, p.digest, kind, key, eq);
        if (s >= 0) {
          status = slot_expired(b.slots[s], now) ? kExpired : kHit;
          out.word[i] = b.slots[s].handle;
          out.form[i] = b.forms[s];
          out.rsize[i] = record_bytes(out.word[i], out.form[i]);
          clear_slot(b, s);
        }
        unlock_word(&b.lock);
        out.status[i] = status;
      }
      return 0;
    }
    if (lane == 0) out.status[i] = kMiss;
    return 0;
  });
}

// One tile of 16 lanes per sample of 4 buckets: each lane finds the lowest score of its
// slots (lowest_score_slot with (lane, 16)); the tile reduces to the bucket's lowest, then
// lane 0 takes the lowest of the 4 buckets and drops it under the bucket lock.
__global__ void evict_kernel(DevTable t, uint64_t hand, uint64_t tiles, uint64_t now,
                             Protected protect, Found out) {
  auto tile = cg::tiled_partition<kTile>(cg::this_thread_block());
  const uint64_t j = (uint64_t{blockIdx.x} * blockDim.x + threadIdx.x) / kTile;
  if (j >= tiles) return;
  const int lane = static_cast<int>(tile.thread_rank());
  constexpr uint64_t kSample = 4;
  uint64_t best_bucket = 0;
  uint64_t best_score = 0;
  bool any = false;
  for (uint64_t q = 0; q < kSample; ++q) {
    const uint64_t idx = (hand + j * kSample + q) & t.mask;
    const Bucket& b = t.buckets[idx];
    uint64_t score = 0;
    const int s = lowest_score_slot(b, protect, &score, lane, kTile);
    const TileBest mine = tile_best_candidate(s, score);
    const TileBest best = tile_min(tile, mine);
    if (best.slot >= 0 && (!any || best.score < best_score)) {
      any = true;
      best_score = best.score;
      best_bucket = idx;
    }
  }
  if (lane != 0) return;
  out.status[j] = kMiss;
  if (!any) return;
  Bucket& b = t.buckets[best_bucket];
  lock_word(&b.lock);
  const int victim = lowest_score_slot(b, protect, nullptr);
  if (victim >= 0) {
    out.status[j] = slot_expired(b.slots[victim], now) ? kExpired : kHit;
    out.word[j] = b.slots[victim].handle;
    out.form[j] = b.forms[victim];
    out.rsize[j] = record_bytes(out.word[j], out.form[j]);
    clear_slot(b, victim);
  }
  unlock_word(&b.lock);
}

// Adds each thread's counts into counters[0..K), one atomic per warp and counter. Every
// thread of the grid reaches the warp reductions (a grid-stride loop, no early exit).
template <int K, class Count>
__device__ void tally(std::size_t n, unsigned long long* counters, Count&& count) {
  unsigned local[K] = {};
  for (uint64_t i = uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n;
       i += uint64_t{gridDim.x} * blockDim.x) {
    count(i, local);
  }
  for (int c = 0; c < K; ++c) {
    const unsigned sum = __reduce_add_sync(0xffffffffu, local[c]);
    if (threadIdx.x % 32 == 0 && sum != 0) atomicAdd(&counters[c], sum);
  }
}

__global__ void tally_lookup_kernel(Found f, std::size_t n, std::size_t width,
                                    unsigned long long* counters) {
  tally<kLookupTallies>(n, counters, [&](uint64_t i, unsigned* c) {
    const bool hit = f.status[i] == kHit;
    c[kTallyHits] += hit ? 1 : 0;
    c[kTallyExpired] += f.status[i] == kExpired ? 1 : 0;
    c[kTallyTooLong] += hit && f.length[i] > width ? 1 : 0;
  });
}

__global__ void tally_insert_kernel(Inserted r, std::size_t n, unsigned long long* counters) {
  tally<kInsertTallies>(n, counters, [&](uint64_t i, unsigned* c) {
    const uint8_t f = r.flags[i];
    const bool displaced = (f & kDisplaced) != 0;
    const bool skipped = (f & kSkipped) != 0;
    c[kTallyUpdated] += (f & kUpdated) != 0 ? 1 : 0;
    c[kTallyNew] += !skipped && !displaced && (f & kUpdated) == 0 ? 1 : 0;
    c[kTallyWasExpired] += (f & kWasExpired) != 0 ? 1 : 0;
    c[kTallyEvicted] += (f & kEvicted) != 0 ? 1 : 0;
    c[kTallySkipped] += skipped ? 1 : 0;
    c[kTallyDisplacedInline] += displaced && form_inline(r.old_form[i]) ? 1 : 0;
    c[kTallyDisplacedRecord] += displaced && !form_inline(r.old_form[i]) ? 1 : 0;
  });
}

__global__ void tally_removed_kernel(Found f, std::size_t n, unsigned long long* counters) {
  tally<kRemovalTallies>(n, counters, [&](uint64_t i, unsigned* c) {
    const uint8_t st = f.status[i];
    const bool removed = st != kMiss;
    c[kTallyRemovedLive] += st == kHit ? 1 : 0;
    c[kTallyRemovedExpired] += st == kExpired ? 1 : 0;
    c[kTallyRemovedInline] += removed && form_inline(f.form[i]) ? 1 : 0;
    c[kTallyRemovedRecord] += removed && !form_inline(f.form[i]) ? 1 : 0;
  });
}

__global__ void hit_sizes_kernel(Found f, std::size_t n, int64_t* sizes) {
  const uint64_t i = uint64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (i < n) sizes[i] = f.status[i] == kHit ? f.length[i] : 0;
  if (i == n) sizes[n] = 0;
}

// One warp per value: the 32 lanes copy its bytes side by side.
__global__ void gather_kernel(Found f, std::size_t n, const int64_t* offsets, uint8_t* data) {
  const uint64_t i = (uint64_t{blockIdx.x} * blockDim.x + threadIdx.x) / 32;
  const unsigned lane = threadIdx.x % 32;
  if (i >= n || f.status[i] != kHit) return;
  const uint8_t* src = value_bytes(f.word[i], f.form[i]);
  uint8_t* dst = data + offsets[i];
  const uint32_t len = f.length[i];
  for (uint32_t b = lane; b < len; b += 32) dst[b] = src[b];
}

__global__ void gather_rows_kernel(Found f, std::size_t n, uint8_t* out, std::size_t width,
                                   uint8_t* found) {
  const uint64_t i = (uint64_t{blockIdx.x} * blockDim.x + threadIdx.x) / 32;
  const unsigned lane = threadIdx.x % 32;
  if (i >= n) return;
  const bool hit = f.status[i] == kHit;
  const uint32_t len = hit ? f.length[i] : 0;
  const bool fits = hit && len <= width;
  uint8_t* row = out + i * width;
  const uint8_t* src = fits ? value_bytes(f.word[i], f.form[i]) : nullptr;
  const std::size_t copied = fits ? len : 0;
  for (std::size_t b = lane; b < width; b += 32) row[b] = b < copied ? src[b] : 0;
  if (lane == 0) found[i] = fits ? 1 : 0;
}

// Rows of at most kNarrowRow bytes: one thread per key (a warp per key, as above, would leave
// most of its lanes idle). kWords: rows of exactly 8 bytes at an 8-byte aligned address, one
// store each.
constexpr std::size_t kNarrowRow = 32;

template <bool kWords>
__global__ void gather_narrow_rows_kernel(Found f, std::size_t n, uint8_t* out, std::size_t width,
                                          uint8_t* found) {
  const uint64_t i = uint64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const bool hit = f.status[i] == kHit;
  const uint32_t len = hit ? f.length[i] : 0;
  const bool fits = hit && len <= width;
  found[i] = fits ? 1 : 0;
  if constexpr (kWords) {
    uint64_t w = 0;
    if (fits) {
      const uint8_t form = f.form[i];
      if (form_inline(form)) {  // the value's bytes are the word's low bytes
        w = len == 8 ? f.word[i] : f.word[i] & ((uint64_t{1} << (8 * len)) - 1);
      } else {
        const uint8_t* src = value_bytes(f.word[i], form);
        for (uint32_t b = 0; b < len; ++b) w |= uint64_t{src[b]} << (8 * b);
      }
    }
    reinterpret_cast<uint64_t*>(out)[i] = w;
  } else {
    uint8_t* row = out + i * width;
    const uint8_t* src = fits ? value_bytes(f.word[i], f.form[i]) : nullptr;
    const std::size_t copied = fits ? len : 0;
    for (std::size_t b = 0; b < width; ++b) row[b] = b < copied ? src[b] : 0;
  }
}

__global__ void pack_inline_kernel(const uint8_t* values, std::size_t width, std::size_t n,
                                   uint64_t* words) {
  const uint64_t i = uint64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (i >= n) return;
  uint64_t w = 0;
  for (std::size_t b = 0; b < width; ++b) w |= uint64_t{values[i * width + b]} << (8 * b);
  words[i] = w;
}

__global__ void build_records_kernel(const uint8_t* values, std::size_t width, std::size_t n,
                                     const uint64_t* handles) {
  const uint64_t i = (uint64_t{blockIdx.x} * blockDim.x + threadIdx.x) / 32;
  const unsigned lane = threadIdx.x % 32;
  if (i >= n) return;
  auto* h = reinterpret_cast<RecordHeader*>(static_cast<uintptr_t>(handles[i]));
  if (lane == 0) *h = RecordHeader{static_cast<uint32_t>(width), 0};
  auto* dst = reinterpret_cast<uint8_t*>(h + 1);
  for (std::size_t b = lane; b < width; b += 32) dst[b] = values[i * width + b];
}

__global__ void scatter_kernel(const uint8_t* src, const uint64_t* src_offsets,
                               const uint32_t* sizes, const uint64_t* dst, std::size_t count) {
  const uint64_t j = (uint64_t{blockIdx.x} * blockDim.x + threadIdx.x) / 32;
  const unsigned lane = threadIdx.x % 32;
  if (j >= count) return;
  const uint8_t* from = src + src_offsets[j];
  auto* to = reinterpret_cast<uint8_t*>(static_cast<uintptr_t>(dst[j]));
  for (uint32_t b = lane; b < sizes[j]; b += 32) to[b] = from[b];
}

}  // namespace

// Launches check their configuration at once (a launch error is reported here, not by a
// later unrelated call); faults inside a kernel surface at the next synchronisation.
#define PREDIS_LAUNCHED(what) check(cudaGetLastError(), what)

void launch_lookup(const DevTable& t, const DevKeys& k, uint64_t now, uint64_t tick, bool touch,
                   const Found& out, cudaStream_t s) {
  if (k.n == 0) return;
  lookup_kernel<<<blocks_for(k.n * kTile), kBlock, 0, s>>>(t, k, now, tick, touch, out);
  PREDIS_LAUNCHED("launching the lookup kernel");
}

void launch_insert(const DevTable& t, const DevKeys& k, const uint64_t* words, const uint8_t* forms,
                   uint8_t form_all, uint64_t expiry, uint64_t now, uint64_t tick, bool prefetched,
                   uint64_t demote, const Inserted& out, cudaStream_t s) {
  if (k.n == 0) return;
  insert_kernel<<<blocks_for(k.n), kBlock, 0, s>>>(t, k, words, forms, form_all, expiry, now, tick,
                                                   prefetched, demote, out);
  PREDIS_LAUNCHED("launching the insert kernel");
}

void launch_erase(const DevTable& t, const DevKeys& k, uint64_t now, const Found& out,
                  cudaStream_t s) {
  if (k.n == 0) return;
  erase_kernel<<<blocks_for(k.n * kTile), kBlock, 0, s>>>(t, k, now, out);
  PREDIS_LAUNCHED("launching the erase kernel");
}

void launch_evict(const DevTable& t, uint64_t hand, uint64_t tiles, uint64_t now,
                  const Protected& protect, const Found& out, cudaStream_t s) {
  if (tiles == 0) return;
  evict_kernel<<<blocks_for(tiles * kTile), kBlock, 0, s>>>(t, hand, tiles, now, protect, out);
  PREDIS_LAUNCHED("launching the eviction kernel");
}

unsigned tally_blocks(std::size_t n) {
  return std::min<unsigned>(blocks_for(n), 2048);
}

void launch_tally_lookup(const Found& f, std::size_t n, std::size_t width,
                         unsigned long long* counters, cudaStream_t s) {
  if (n == 0) return;
  tally_lookup_kernel<<<tally_blocks(n), kBlock, 0, s>>>(f, n, width, counters);
  PREDIS_LAUNCHED("launching the lookup tally");
}

void launch_tally_insert(const Inserted& r, std::size_t n, unsigned long long* counters,
                         cudaStream_t s) {
  if (n == 0) return;
  tally_insert_kernel<<<tally_blocks(n), kBlock, 0, s>>>(r, n, counters);
  PREDIS_LAUNCHED("launching the insert tally");
}

void launch_tally_removed(const Found& f, std::size_t n, unsigned long long* counters,
                          cudaStream_t s) {
  if (n == 0) return;
  tally_removed_kernel<<<tally_blocks(n), kBlock, 0, s>>>(f, n, counters);
  PREDIS_LAUNCHED("launching the removal tally");
}

void launch_hit_sizes(const Found& f, std::size_t n, int64_t* sizes, cudaStream_t s) {
  hit_sizes_kernel<<<blocks_for(n + 1), kBlock, 0, s>>>(f, n, sizes);
  PREDIS_LAUNCHED("launching the value-length pass");
}

std::size_t scan_temp_bytes(std::size_t n) {
  std::size_t bytes = 0;
  check(cub::DeviceScan::ExclusiveSum(nullptr, bytes, static_cast<const int64_t*>(nullptr),
                                      static_cast<int64_t*>(nullptr), static_cast<int64_t>(n + 1)),
        "sizing the prefix sum");
  return bytes;
}

void launch_offsets(void* temp, std::size_t temp_bytes, const int64_t* sizes, int64_t* offsets,
                    std::size_t n, cudaStream_t s) {
  check(cub::DeviceScan::ExclusiveSum(temp, temp_bytes, sizes, offsets, static_cast<int64_t>(n + 1),
                                      s),
        "running the prefix sum of value lengths");
}

void launch_gather(const Found& f, std::size_t n, const int64_t* offsets, uint8_t* data,
                   cudaStream_t s) {
  if (n == 0) return;
  gather_kernel<<<blocks_for(uint64_t{n} * 32), kBlock, 0, s>>>(f, n, offsets, data);
  PREDIS_LAUNCHED("launching the value copy pass");
}

void launch_gather_rows(const Found& f, std::size_t n, uint8_t* out, std::size_t width,
                        uint8_t* found, cudaStream_t s) {
  if (n == 0) return;
  if (width == 8 && reinterpret_cast<uintptr_t>(out) % alignof(uint64_t) == 0) {
    gather_narrow_rows_kernel<true><<<blocks_for(n), kBlock, 0, s>>>(f, n, out, width, found);
  } else if (width <= kNarrowRow) {
    gather_narrow_rows_kernel<false><<<blocks_for(n), kBlock, 0, s>>>(f, n, out, width, found);
  } else {
    gather_rows_kernel<<<blocks_for(uint64_t{n} * 32), kBlock, 0, s>>>(f, n, out, width, found);
  }
  PREDIS_LAUNCHED("launching the row copy pass");
}

void launch_pack_inline(const uint8_t* values, std::size_t width, std::size_t n, uint64_t* words,
                        cudaStream_t s) {
  if (n == 0) return;
  pack_inline_kernel<<<blocks_for(n), kBlock, 0, s>>>(values, width, n, words);
  PREDIS_LAUNCHED("launching the inline value pack");
}

void launch_build_records(const uint8_t* values, std::size_t width, std::size_t n,
                          const uint64_t* handles, cudaStream_t s) {
  if (n == 0) return;
  build_records_kernel<<<blocks_for(uint64_t{n} * 32), kBlock, 0, s>>>(values, width, n, handles);
  PREDIS_LAUNCHED("launching the record build");
}

void launch_scatter(const uint8_t* src, const uint64_t* src_offsets, const uint32_t* sizes,
                    const uint64_t* dst, std::size_t count, cudaStream_t s) {
  if (count == 0) return;
  scatter_kernel<<<blocks_for(uint64_t{count} * 32), kBlock, 0, s>>>(src, src_offsets, sizes, dst,
                                                                     count);
  PREDIS_LAUNCHED("launching the record scatter");
}

}  // namespace predis::cuda
