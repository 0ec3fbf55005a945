// The CUDA backend's kernels, as host-callable launchers. Every kernel is a thin driver of
// the shared PREDIS_HD bucket logic (predis/bucket.hpp); this header is plain C++ so that
// the table's host logic (cuda_table.cpp) compiles with the host compiler and its warnings.
// Every pointer below is device memory unless it says otherwise.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "predis/bucket.hpp"

namespace predis::cuda {

// The table as the kernels see it.
struct DevTable {
  Bucket* buckets = nullptr;  // (mask + 1)
  uint64_t mask = 0;
  Policy policy = Policy::kLru;
};

// A batch of keys.
struct DevKeys {
  const uint64_t* keys = nullptr;          // (n) the int key, or a bytes key's hash_bytes()
  const uint8_t* kinds = nullptr;          // (n) KeyKind of each key; null: all int keys
  const uint8_t* bytes = nullptr;          // bytes keys back to back; null when none
  const uint64_t* byte_offsets = nullptr;  // (n + 1) into bytes; null when none
  std::size_t n = 0;
};

// What a lookup, erase or eviction found at each position.
enum Status : uint8_t {
  kMiss = 0,     // absent (or, for an eviction tile, nothing evictable in its sample)
  kHit = 1,      // present and live (erase: removed; eviction: a live entry evicted)
  kExpired = 2,  // present but expired: the entry was dropped; word/form name its value
};

// Per-key results. word/form: the found entry's handle or inline value word and form byte
// (for kExpired, the dropped entry's, which the host releases). length: the value's length.
struct Found {
  uint8_t* status = nullptr;   // (n)
  uint64_t* word = nullptr;    // (n)
  uint8_t* form = nullptr;     // (n)
  uint32_t* length = nullptr;  // (n) or null
  uint64_t* rsize = nullptr;   // (n) record bytes of word (0 for an inline value)
};

// Per-key results of insert_or_assign: kInsert* flags, and the displaced value to release.
enum InsertFlag : uint8_t {
  kUpdated = 1,
  kDisplaced = 2,
  kWasExpired = 4,
  kEvicted = 8,
  kSkipped = 16,
};
struct Inserted {
  uint8_t* flags = nullptr;       // (n)
  uint64_t* old_word = nullptr;   // (n)
  uint8_t* old_form = nullptr;    // (n)
  uint64_t* old_rsize = nullptr;  // (n) record bytes of old_word (0 for an inline value)
};

// find: a tile of 16 lanes per key, one slot per lane. With `touch`, a hit's score is
// updated as an access at tick + i. Expired entries are dropped (status kExpired).
void launch_lookup(const DevTable& t, const DevKeys& k, uint64_t now, uint64_t tick, bool touch,
                   const Found& out, cudaStream_t s);

// insert_or_assign: one thread per key holding both candidate buckets' locks while it runs
// insert_into_pair. words/forms: the new value of each key (forms null: every key has
// form_all). With prefetched, the stores rank `demote` operations back and skip live keys.
void launch_insert(const DevTable& t, const DevKeys& k, const uint64_t* words, const uint8_t* forms,
                   uint8_t form_all, uint64_t expiry, uint64_t now, uint64_t tick, bool prefetched,
                   uint64_t demote, const Inserted& out, cudaStream_t s);

// erase: status kHit (a live entry removed), kExpired (an expired one dropped) or kMiss.
void launch_erase(const DevTable& t, const DevKeys& k, uint64_t now, const Found& out,
                  cudaStream_t s);

// Capacity eviction: tile j samples buckets hand + 4j .. hand + 4j + 3 and drops the
// lowest-score entry among them (status kHit, or kExpired when it had expired), never the
// protected key (the one a single-key put just stored, as the CPU backend protects it).
void launch_evict(const DevTable& t, uint64_t hand, uint64_t tiles, uint64_t now,
                  const Protected& protect, const Found& out, cudaStream_t s);

// Tallies of per-key results, added into counters (device; the caller zeroes them), so a
// batch's outcome reaches the host as a few words instead of a pass over every key.
enum LookupTally { kTallyHits = 0, kTallyExpired, kTallyTooLong, kLookupTallies };
void launch_tally_lookup(const Found& f, std::size_t n, std::size_t width,
                         unsigned long long* counters, cudaStream_t s);
enum InsertTally {
  kTallyUpdated = 0,
  kTallyNew,  // stored without displacing anything: one more item
  kTallyWasExpired,
  kTallyEvicted,
  kTallySkipped,
  kTallyDisplacedInline,  // displaced values that were inline (16 bytes of capacity each)
  kTallyDisplacedRecord,  // displaced values in the arena: the host must release them
  kInsertTallies
};
void launch_tally_insert(const Inserted& r, std::size_t n, unsigned long long* counters,
                         cudaStream_t s);
// Removals (erase, eviction): status kHit / kExpired, and which removed values were records.
enum RemovalTally {
  kTallyRemovedLive = 0,
  kTallyRemovedExpired,
  kTallyRemovedInline,
  kTallyRemovedRecord,
  kRemovalTallies
};
void launch_tally_removed(const Found& f, std::size_t n, unsigned long long* counters,
                          cudaStream_t s);

// get's copy passes. sizes (n + 1): value lengths of hits (0 for misses) and a trailing 0,
// ready for the prefix sum into offsets.
void launch_hit_sizes(const Found& f, std::size_t n, int64_t* sizes, cudaStream_t s);
// Bytes of temporary storage the prefix sum of n + 1 sizes needs.
std::size_t scan_temp_bytes(std::size_t n);
void launch_offsets(void* temp, std::size_t temp_bytes, const int64_t* sizes, int64_t* offsets,
                    std::size_t n, cudaStream_t s);
// Copies every hit's value to data + offsets[i].
void launch_gather(const Found& f, std::size_t n, const int64_t* offsets, uint8_t* data,
                   cudaStream_t s);
// get_into: row i of out (n, width) gets the value, zero padded; rows of misses and of values
// longer than width are zeroed. found[i] = hit and fits.
void launch_gather_rows(const Found& f, std::size_t n, uint8_t* out, std::size_t width,
                        uint8_t* found, cudaStream_t s);

// Values from a device array (n, width): inline words (width <= 8), or records built at the
// given arena handles (header, then the value).
void launch_pack_inline(const uint8_t* values, std::size_t width, std::size_t n, uint64_t* words,
                        cudaStream_t s);
void launch_build_records(const uint8_t* values, std::size_t width, std::size_t n,
                          const uint64_t* handles, cudaStream_t s);
// Records staged back to back in src: record j (size sizes[j] at src_offsets[j]) goes to
// the arena chunk at dst[j].
void launch_scatter(const uint8_t* src, const uint64_t* src_offsets, const uint32_t* sizes,
                    const uint64_t* dst, std::size_t count, cudaStream_t s);

}  // namespace predis::cuda
