// The A/B split's bucket of a key, remembered: a keyed BLAKE2b compression costs about two
// thousand instructions, and a cache's demand stream asks for the same hot keys again and
// again, so each key's bucket is kept in a direct-mapped table and looked up in a few.
//
// A table entry is one 64-bit word, read and written with relaxed atomics: threads may
// look up and fill the table at once (the serving thread splits candidates while the
// router's thread counts a chunk) and never see a torn entry. The word holds the key's
// bucket and a tag. The slot and the tag are the two halves of a bijective mix of the key,
// so together they name exactly one key: a hit is never another key's bucket. A miss (an
// empty slot, or another key's) computes the hash and overwrites the slot.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "predis/blake2b.hpp"

namespace predis {

class SplitMemo {
 public:
  // Fewer slot bits would leave the tag no room beside the bucket in one word.
  static constexpr unsigned kMinBits = 17;
  static constexpr unsigned kMaxBits = 24;
  static constexpr uint32_t kMaxBuckets = 1u << 16;

  // secret: (secret_len) host, 1..64 bytes; n_buckets in [1, 2^16]; memo_bits in
  // [kMinBits, kMaxBits] (the caller validates all three).
  SplitMemo(const uint8_t* secret, std::size_t secret_len, uint32_t n_buckets, unsigned memo_bits)
      : hash_(secret, secret_len),
        n_buckets_(n_buckets),
        bits_(memo_bits),
        mask_((uint64_t{1} << memo_bits) - 1),
        slots_(std::size_t{1} << memo_bits) {}

  uint32_t n_buckets() const noexcept { return n_buckets_; }
  std::size_t slots() const noexcept { return slots_.size(); }

  // The key's bucket: the keyed digest (a little-endian u64) modulo n_buckets.
  uint32_t bucket(uint64_t key) noexcept {
    const uint64_t m = mix(key);
    std::atomic<uint64_t>& slot = slots_[static_cast<std::size_t>(m & mask_)];
    const uint64_t tagged = ((m >> bits_) << kTagShift) | kFilled;
    const uint64_t seen = slot.load(std::memory_order_relaxed);
    if ((seen & ~kBucketMask) == tagged) return static_cast<uint32_t>(seen & kBucketMask);
    const auto b = static_cast<uint32_t>(hash_.hash(key) % n_buckets_);
    slot.store(tagged | b, std::memory_order_relaxed);
    return b;
  }

  // The digest itself, not remembered.
  uint64_t digest(uint64_t key) const noexcept { return hash_.hash(key); }

 private:
  static constexpr unsigned kTagShift = 17;
  static constexpr uint64_t kFilled = uint64_t{1} << 16;  // an empty slot is all zero
  static constexpr uint64_t kBucketMask = kFilled - 1;

  // splitmix64's finaliser: xor-shifts and odd multiplications, each invertible, so
  // distinct keys never share both slot and tag.
  static uint64_t mix(uint64_t z) noexcept {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  KeyedBlake2b8 hash_;
  uint32_t n_buckets_;
  unsigned bits_;
  uint64_t mask_;
  std::vector<std::atomic<uint64_t>> slots_;  // value-initialised: every slot empty
};

}  // namespace predis
