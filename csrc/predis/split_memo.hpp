// The A/B split's bucket of a key, remembered: a keyed BLAKE2b compression costs about two
// thousand instructions, and a cache's demand stream asks for the same hot keys again and
// again, so each key's bucket is kept in a direct-mapped table and looked up in a few.
// The keys it does not hold are hashed four at a time with AVX2 where the CPU has it.
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
  // [kMinBits, kMaxBits] (the caller validates all three). vectorized: hash with AVX2
  // where the CPU has it.
  SplitMemo(const uint8_t* secret, std::size_t secret_len, uint32_t n_buckets, unsigned memo_bits,
            bool vectorized = true)
      : hash_(secret, secret_len),
        n_buckets_(n_buckets),
        bits_(memo_bits),
        mask_((uint64_t{1} << memo_bits) - 1),
        avx2_(vectorized && avx2_available()),
        slots_(std::size_t{1} << memo_bits) {}

  uint32_t n_buckets() const noexcept { return n_buckets_; }
  std::size_t slots() const noexcept { return slots_.size(); }
  bool vectorized() const noexcept { return avx2_; }

  // sink(i, b) for every i < n, b the bucket of keys[i]: the keyed digest (a little-endian
  // u64) modulo n_buckets. Not in order: keys the memo does not hold are hashed four at a
  // time where the CPU has AVX2.
  template <class Sink>
  void each_bucket(const uint64_t* keys, std::size_t n, Sink&& sink) noexcept {
    std::size_t pending[4];
    int waiting = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const uint64_t m = mix(keys[i]);
      const uint64_t seen =
          slots_[static_cast<std::size_t>(m & mask_)].load(std::memory_order_relaxed);
      if ((seen & ~kBucketMask) == tag_of(m)) {
        sink(i, static_cast<uint32_t>(seen & kBucketMask));
        continue;
      }
      if (!avx2_) {
        sink(i, remember(m, hash_.hash(keys[i])));
        continue;
      }
      pending[waiting++] = i;
      if (waiting == 4) {
        hash_pending(keys, pending, 4, sink);
        waiting = 0;
      }
    }
    hash_pending(keys, pending, waiting, sink);
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

  uint64_t tag_of(uint64_t m) const noexcept { return ((m >> bits_) << kTagShift) | kFilled; }

  // The bucket of a key (m: its mix) of this digest, remembered in its slot.
  uint32_t remember(uint64_t m, uint64_t digest) noexcept {
    const auto b = static_cast<uint32_t>(digest % n_buckets_);
    slots_[static_cast<std::size_t>(m & mask_)].store(tag_of(m) | b, std::memory_order_relaxed);
    return b;
  }

  template <class Sink>
  void hash_pending(const uint64_t* keys, const std::size_t* pending, int count,
                    Sink& sink) noexcept {
    uint64_t msg[4] = {};
    uint64_t out[4];
    for (int j = 0; j < count; ++j) msg[j] = keys[pending[j]];
#ifdef PREDIS_BLAKE2B_AVX2
    if (count == 4) {
      hash_.hash4_avx2(msg, out);
    } else {
      for (int j = 0; j < count; ++j) out[j] = hash_.hash(msg[j]);
    }
#else
    for (int j = 0; j < count; ++j) out[j] = hash_.hash(msg[j]);
#endif
    for (int j = 0; j < count; ++j) sink(pending[j], remember(mix(msg[j]), out[j]));
  }

  static bool avx2_available() noexcept {
#ifdef PREDIS_BLAKE2B_AVX2
    return KeyedBlake2b8::has_avx2();
#else
    return false;
#endif
  }

  KeyedBlake2b8 hash_;
  uint32_t n_buckets_;
  unsigned bits_;
  uint64_t mask_;
  bool avx2_;
  std::vector<std::atomic<uint64_t>> slots_;  // value-initialised: every slot empty
};

}  // namespace predis
