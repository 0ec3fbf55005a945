// The bucket: one algorithm for probe, insert, evict and expiry, shared by every backend.
//
// Everything here is PREDIS_HD and free of locks, allocation and I/O: a driver (the CPU
// backend with host threads, the CUDA backend with warp tiles) owns concurrency and memory.
// Scanning functions take (first, step) so that one thread scans all slots with (0, 1) and
// lane l of a tile of T threads scans its share with (l, T), the driver then reducing the
// per-lane answers.
#pragma once

#include <cstdint>

#if defined(__SSE2__) && !defined(__CUDA_ARCH__)
#include <emmintrin.h>
#endif

#include "predis/hash.hpp"
#include "predis/platform.hpp"

namespace predis {

inline constexpr int kSlotsPerBucket = 16;
inline constexpr uint8_t kEmptyDigest = 0;

enum class KeyKind : uint8_t { kInt = 0, kBytes = 1 };

enum class Policy : uint8_t { kLru = 0, kLfu = 1 };

// A slot's form byte: bit 0 the KeyKind; bit 1 set when the value is stored inline in the
// handle word (int keys with values of at most 8 bytes: no record, no arena access); bits
// 4-7 the inline value's length.
inline constexpr uint8_t kFormInline = 0x2;
inline constexpr uint32_t kMaxInlineValue = 8;

PREDIS_HD inline uint8_t make_form(KeyKind kind, bool inline_value, uint32_t inline_len) {
  return static_cast<uint8_t>(static_cast<uint8_t>(kind) | (inline_value ? kFormInline : 0) |
                              (inline_value ? inline_len << 4 : 0));
}
PREDIS_HD inline KeyKind form_kind(uint8_t form) {
  return static_cast<KeyKind>(form & 0x1);
}
PREDIS_HD inline bool form_inline(uint8_t form) {
  return (form & kFormInline) != 0;
}
PREDIS_HD inline uint32_t form_inline_len(uint8_t form) {
  return form >> 4;
}

// One entry. 32 bytes, so a slot never straddles a cache line.
struct Slot {
  uint64_t key;     // the int key, or the 64-bit hash of a bytes key
  uint64_t score;   // eviction score: the lowest in a bucket goes first
  uint64_t handle;  // arena handle of the record (value and bytes key), or an inline value
  uint64_t expiry;  // deadline in ns on the table's clock; 0 means never
};
static_assert(sizeof(Slot) == 32, "a slot must tile cache lines exactly");

// A bucket: one header line (digests, key kinds, a lock word), then the slots.
struct alignas(kCacheLine) Bucket {
  uint8_t digests[kSlotsPerBucket];  // kEmptyDigest marks a free slot
  uint8_t forms[kSlotsPerBucket];    // SlotForm of each occupied slot
  uint32_t lock;                     // owned by the driver (spinlock on CPU, CAS on GPU)
  uint32_t count;                    // occupied slots
  uint8_t reserved[kCacheLine - 2 * kSlotsPerBucket - 2 * sizeof(uint32_t)];
  Slot slots[kSlotsPerBucket];
};
static_assert(sizeof(Bucket) == kCacheLine + kSlotsPerBucket * sizeof(Slot),
              "bucket header must be exactly one cache line");
static_assert(alignof(Bucket) == kCacheLine, "buckets must be cache-line aligned");

// Where a key lives. Every key has two candidate buckets: it goes to the first unless that
// one is crowded (see prefer_second), so buckets overflow far less often than with one
// choice (at half load a 16-slot bucket overflows about once per 300 buckets with one
// choice, practically never with two). Keys never move once placed, so a lookup checks b1,
// then b2.
struct Placement {
  uint64_t b1;
  uint64_t b2;  // equals b1 when both choices coincide
  uint8_t digest;
};

PREDIS_HD inline uint64_t placement_hash(uint64_t key, KeyKind kind) {
  // Bytes keys are already fmix64-mixed; int keys are mixed here so that sequential
  // ints spread over buckets. The salt separates the two kinds' placements.
  return kind == KeyKind::kInt ? fmix64(key) : fmix64(key ^ 0x9e3779b97f4a7c15ULL);
}

PREDIS_HD inline uint8_t digest_of(uint64_t h) {
  const auto d = static_cast<uint8_t>(h >> 56);
  return d == kEmptyDigest ? uint8_t{1} : d;
}

// mask = bucket count - 1 (a power of two). b1 takes the low bits of the hash, b2 the bits
// from 32 up, and the digest the top 8, so the three are independent up to 2^24 buckets.
PREDIS_HD inline Placement place(uint64_t key, KeyKind kind, uint64_t mask) {
  const uint64_t h = placement_hash(key, kind);
  return Placement{h & mask, ((h >> 32) | (h << 32)) & mask, digest_of(h)};
}

PREDIS_HD inline bool slot_used(const Bucket& b, int i) {
  return b.digests[i] != kEmptyDigest;
}

PREDIS_HD inline bool slot_expired(const Slot& s, uint64_t now) {
  return s.expiry != 0 && s.expiry <= now;
}

// Bit i set where digests[i] == d, for the 16 slots of a bucket. One SSE2 compare on the
// host; a plain loop elsewhere (on the device each lane looks at its own slots instead).
PREDIS_HD inline uint32_t digest_mask(const uint8_t* digests, uint8_t d) {
#if defined(__SSE2__) && !defined(__CUDA_ARCH__)
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(digests));
  return static_cast<uint32_t>(
      _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(static_cast<char>(d)))));
#else
  uint32_t m = 0;
  for (int i = 0; i < kSlotsPerBucket; ++i) m |= static_cast<uint32_t>(digests[i] == d) << i;
  return m;
#endif
}
static_assert(kSlotsPerBucket == 16, "digest_mask covers exactly 16 slots");

PREDIS_HD inline int lowest_bit(uint32_t m) {
#if defined(__CUDA_ARCH__)
  return __ffs(m) - 1;
#else
  return __builtin_ctz(m);
#endif
}

// The full-key check for int keys: the 64-bit key is the whole key, so a match is final.
struct IntKeyEq {
  PREDIS_HD bool operator()(const Slot&) const { return true; }
};

// The slot holding `key` of `kind`, or -1, scanning every slot of the bucket. Candidates come
// from the digest mask; `full_key_eq(slot)` confirms a bytes key against its stored copy.
template <class FullKeyEq>
PREDIS_HD int find_slot_all(const Bucket& b, uint8_t digest, KeyKind kind, uint64_t key,
                            FullKeyEq&& full_key_eq) {
  for (uint32_t m = digest_mask(b.digests, digest); m != 0; m &= m - 1) {
    const int i = lowest_bit(m);
    if (form_kind(b.forms[i]) == kind && b.slots[i].key == key && full_key_eq(b.slots[i])) {
      return i;
    }
  }
  return -1;
}

// First slot in (first, first+step, ...) holding `key` of `kind`, or -1. `full_key_eq(slot)`
// confirms a bytes key against its stored copy, so a 64-bit hash collision never matches.
template <class FullKeyEq>
PREDIS_HD int find_slot(const Bucket& b, uint8_t digest, KeyKind kind, uint64_t key,
                        FullKeyEq&& full_key_eq, int first = 0, int step = 1) {
  for (int i = first; i < kSlotsPerBucket; i += step) {
    if (b.digests[i] == digest && form_kind(b.forms[i]) == kind && b.slots[i].key == key &&
        full_key_eq(b.slots[i])) {
      return i;
    }
  }
  return -1;
}

// Where a new key goes, in order of preference: a free slot, an expired entry, the entry
// with the lowest score. `evicts` says whether a live entry is displaced.
struct InsertPlan {
  int slot = -1;
  bool occupied = false;  // the slot holds an entry that must be released
  bool expired = false;   // that entry had expired (an expiration, not an eviction)
  uint64_t score = 0;     // score of the displaced entry
};

PREDIS_HD inline InsertPlan plan_insert(const Bucket& b, uint64_t now, int first = 0,
                                        int step = 1) {
  InsertPlan plan;
  if (first == 0 && step == 1 && b.count < kSlotsPerBucket) {
    // A free slot beats everything, so find one from the digests alone.
    plan.slot = lowest_bit(digest_mask(b.digests, kEmptyDigest));
    return plan;
  }
  for (int i = first; i < kSlotsPerBucket; i += step) {
    if (!slot_used(b, i)) {
      plan.slot = i;
      plan.occupied = false;
      plan.expired = false;
      return plan;
    }
    const Slot& s = b.slots[i];
    if (slot_expired(s, now)) {
      if (!plan.expired) {
        plan = InsertPlan{i, true, true, s.score};
      }
      continue;
    }
    if (!plan.expired && (plan.slot < 0 || s.score < plan.score)) {
      plan = InsertPlan{i, true, false, s.score};
    }
  }
  return plan;
}

// A key that eviction must skip: the one being inserted, so that making room for an entry
// never evicts that entry. (For bytes keys the hash stands for the key; skipping another key
// with the same 64-bit hash is harmless.)
struct Protected {
  uint64_t key = 0;
  KeyKind kind = KeyKind::kInt;
  bool any = false;
};

PREDIS_HD inline bool is_protected(const Bucket& b, int i, const Protected& p) {
  return p.any && b.slots[i].key == p.key && form_kind(b.forms[i]) == p.kind;
}

// The occupied, unprotected slot with the lowest score, or -1.
PREDIS_HD inline int lowest_score_slot(const Bucket& b, const Protected& protect,
                                       uint64_t* score_out, int first = 0, int step = 1) {
  int best = -1;
  uint64_t best_score = 0;
  for (int i = first; i < kSlotsPerBucket; i += step) {
    if (!slot_used(b, i) || is_protected(b, i, protect)) continue;
    if (best < 0 || b.slots[i].score < best_score) {
      best = i;
      best_score = b.slots[i].score;
    }
  }
  if (score_out != nullptr) *score_out = best_score;
  return best;
}

// A new key stays in its first bucket until that bucket is three-quarters full; only then
// does the emptier of the two win. Most keys so live in b1 and a lookup reads one bucket,
// while overflow still spreads over two choices.
inline constexpr uint32_t kSpillThreshold = kSlotsPerBucket * 3 / 4;

// Of two insert plans (one per candidate bucket), the better: a free slot, then an expired
// entry, then the lower score; ties go to the first.
PREDIS_HD inline bool prefer_second(const InsertPlan& a, uint32_t count_a, const InsertPlan& b,
                                    uint32_t count_b) {
  if (b.slot < 0) return false;
  if (a.slot < 0) return true;
  if (a.occupied != b.occupied) return !b.occupied;
  if (!a.occupied) return count_a >= kSpillThreshold && count_b < count_a;
  if (a.expired != b.expired) return b.expired;
  return b.score < a.score;
}

PREDIS_HD inline void fill_slot(Bucket& b, int i, uint8_t digest, uint8_t form, uint64_t key,
                                uint64_t score, uint64_t handle, uint64_t expiry) {
  if (!slot_used(b, i)) ++b.count;
  b.digests[i] = digest;
  b.forms[i] = form;
  b.slots[i] = Slot{key, score, handle, expiry};
}

PREDIS_HD inline void clear_slot(Bucket& b, int i) {
  if (slot_used(b, i)) --b.count;
  b.digests[i] = kEmptyDigest;
  b.forms[i] = 0;
  b.slots[i] = Slot{0, 0, 0, 0};
}

// What storing a key into its two candidate buckets did. The caller releases the displaced
// value (if any) after unlocking and counts the outcome.
struct PairInsertResult {
  bool updated = false;    // the key was present and live: its value was replaced
  bool displaced = false;  // a value left the table: the key's old one, or a victim's
  bool expired = false;    // ... and that value had expired (an expiration)
  bool evicted = false;    // ... and it was another live key's (an eviction)
  bool skipped = false;    // a prefetched value was not stored: the key is live already
  uint64_t old_handle = 0;
  uint8_t old_form = 0;
};

PREDIS_HD inline uint64_t score_on_insert(Policy p, uint64_t tick);
PREDIS_HD inline uint64_t score_on_hit(Policy p, uint64_t old, uint64_t tick);
PREDIS_HD inline uint64_t score_on_prefetch(Policy p, uint64_t tick, uint64_t demote);

// insert_or_assign on a key's buckets b1 and b2 (the same bucket when the two choices
// coincide), both already locked by the caller: replace the key's entry if it is present,
// else take the better plan of the two buckets (see prefer_second), evicting if it must.
//
// How the store ranks for eviction: a demand store ranks as an access now. A prefetched
// store (kPrefetched, a guess) ranks as if last used `demote` operations ago (under LFU, as
// a fresh entry with that older tick), and never replaces a live entry (which may be newer
// than what the loader returned): it is skipped. A template parameter, so that the demand
// path compiles to exactly what it was.
template <bool kPrefetched = false, class FullKeyEq>
PREDIS_HD PairInsertResult insert_into_pair(Bucket& b1, Bucket& b2, uint8_t digest, KeyKind kind,
                                            uint64_t key, FullKeyEq&& full_key_eq, uint8_t form,
                                            uint64_t handle, uint64_t expiry, uint64_t now,
                                            uint64_t tick, Policy policy, uint64_t demote = 0) {
  const bool two = &b1 != &b2;
  PairInsertResult r;
  Bucket* home = &b1;
  int i = find_slot_all(b1, digest, kind, key, full_key_eq);
  if (i < 0 && two) {
    home = &b2;
    i = find_slot_all(b2, digest, kind, key, full_key_eq);
  }
  if (i >= 0) {
    Slot& s = home->slots[i];
    if constexpr (kPrefetched) {
      // A live entry may be newer than what the loader returned: a guess never replaces it.
      if (!slot_expired(s, now)) {
        r.skipped = true;
        return r;
      }
    }
    r.displaced = true;
    r.old_handle = s.handle;
    r.old_form = home->forms[i];
    r.updated = !slot_expired(s, now);
    r.expired = !r.updated;
    s.handle = handle;
    home->forms[i] = form;
    s.expiry = expiry;
    if constexpr (kPrefetched) {
      s.score = score_on_prefetch(policy, tick, demote);  // it had expired: a fresh guess
    } else {
      s.score = r.updated ? score_on_hit(policy, s.score, tick) : score_on_insert(policy, tick);
    }
    return r;
  }
  InsertPlan plan = plan_insert(b1, now);
  Bucket* target = &b1;
  // b2 can only win when b1 is crowded or full (prefer_second), so only then is it read.
  if (two && (plan.occupied || b1.count >= kSpillThreshold)) {
    const InsertPlan plan2 = plan_insert(b2, now);
    if (prefer_second(plan, b1.count, plan2, b2.count)) {
      plan = plan2;
      target = &b2;
    }
  }
  if (plan.occupied) {
    r.displaced = true;
    r.expired = plan.expired;
    r.evicted = !plan.expired;
    r.old_handle = target->slots[plan.slot].handle;
    r.old_form = target->forms[plan.slot];
  }
  uint64_t score;
  if constexpr (kPrefetched) {
    score = score_on_prefetch(policy, tick, demote);
  } else {
    score = score_on_insert(policy, tick);
    (void)demote;
  }
  fill_slot(*target, plan.slot, digest, form, key, score, handle, expiry);
  return r;
}

// Scores. LRU: the access tick. LFU: an access count in the top 24 bits with the tick in
// the low 40 as a tie-break, so equally frequent entries leave oldest first.
inline constexpr int kLfuTickBits = 40;
inline constexpr uint64_t kLfuTickMask = (uint64_t{1} << kLfuTickBits) - 1;
inline constexpr uint64_t kLfuMaxCount = (uint64_t{1} << (64 - kLfuTickBits)) - 1;

PREDIS_HD inline uint64_t score_on_insert(Policy p, uint64_t tick) {
  return p == Policy::kLru ? tick : ((uint64_t{1} << kLfuTickBits) | (tick & kLfuTickMask));
}

PREDIS_HD inline uint64_t score_on_prefetch(Policy p, uint64_t tick, uint64_t demote) {
  const uint64_t t = tick > demote ? tick - demote : 0;
  // LFU: the use count of a fresh entry, with the demoted tick as its tie-break. (A count of
  // zero would put every guess, sure or weak, below every entry and evict it before use.)
  return p == Policy::kLru ? t : ((uint64_t{1} << kLfuTickBits) | (t & kLfuTickMask));
}

PREDIS_HD inline uint64_t score_on_hit(Policy p, uint64_t old, uint64_t tick) {
  if (p == Policy::kLru) return tick;
  uint64_t count = old >> kLfuTickBits;
  if (count < kLfuMaxCount) ++count;
  return (count << kLfuTickBits) | (tick & kLfuTickMask);
}

}  // namespace predis
