// Keyed BLAKE2b (RFC 7693) of 8-byte messages with an 8-byte digest: the A/B traffic
// split's hash of an int key, bit for bit what Python's
// hashlib.blake2b(key.to_bytes(8, "little"), key=secret, digest_size=8) computes.
//
// Only this shape is needed, so the state after the (constant) key block is computed
// once per split and each key costs one compression.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace predis {

class KeyedBlake2b8 {
 public:
  static constexpr std::size_t kMaxKeyBytes = 64;

  // key: (key_len) host, 1..64 bytes (the caller validates).
  KeyedBlake2b8(const uint8_t* key, std::size_t key_len) noexcept {
    h_ = kIv;
    h_[0] ^= 0x01010000ULL ^ (static_cast<uint64_t>(key_len) << 8) ^ kDigestBytes;
    uint8_t block[128] = {};
    std::memcpy(block, key, key_len);
    compress(h_, block, 128, false);
  }

  // The digest of the 8 little-endian bytes of msg, read as a little-endian u64.
  uint64_t hash(uint64_t msg) const noexcept {
    uint8_t block[128] = {};
    for (int i = 0; i < 8; ++i) block[i] = static_cast<uint8_t>(msg >> (8 * i));
    std::array<uint64_t, 8> h = h_;
    compress(h, block, 128 + 8, true);
    return h[0];  // the first 8 bytes of the digest, little-endian
  }

 private:
  static constexpr uint64_t kDigestBytes = 8;
  static constexpr std::array<uint64_t, 8> kIv = {
      0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
      0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};
  static constexpr uint8_t kSigma[12][16] = {
      {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
      {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
      {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
      {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
      {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
      {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
      {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
      {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
      {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
      {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
      {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
      {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}};

  static uint64_t rotr(uint64_t x, int n) noexcept { return (x >> n) | (x << (64 - n)); }

  static uint64_t load64(const uint8_t* p) noexcept {
    uint64_t x = 0;
    for (int i = 7; i >= 0; --i) x = (x << 8) | p[i];
    return x;
  }

  // Always inlined: a G left as a call (LTO chose so) made the digest twice as slow.
  [[gnu::always_inline]] static inline void g(uint64_t& a, uint64_t& b, uint64_t& c, uint64_t& d,
                                              uint64_t x, uint64_t y) noexcept {
    a = a + b + x;
    d = rotr(d ^ a, 32);
    c = c + d;
    b = rotr(b ^ c, 24);
    a = a + b + y;
    d = rotr(d ^ a, 16);
    c = c + d;
    b = rotr(b ^ c, 63);
  }

  // One round with its message schedule known at compile time, so that every round is
  // straight-line code on registers (a loop over kSigma ran ~8x slower).
  template <int R>
  [[gnu::always_inline]] static inline void round(uint64_t* v, const uint64_t* m) noexcept {
    constexpr const uint8_t* s = kSigma[R];
    g(v[0], v[4], v[8], v[12], m[s[0]], m[s[1]]);
    g(v[1], v[5], v[9], v[13], m[s[2]], m[s[3]]);
    g(v[2], v[6], v[10], v[14], m[s[4]], m[s[5]]);
    g(v[3], v[7], v[11], v[15], m[s[6]], m[s[7]]);
    g(v[0], v[5], v[10], v[15], m[s[8]], m[s[9]]);
    g(v[1], v[6], v[11], v[12], m[s[10]], m[s[11]]);
    g(v[2], v[7], v[8], v[13], m[s[12]], m[s[13]]);
    g(v[3], v[4], v[9], v[14], m[s[14]], m[s[15]]);
  }

  // bytes: total bytes hashed so far including this block; last: the final block.
  static void compress(std::array<uint64_t, 8>& h, const uint8_t* block, uint64_t bytes,
                       bool last) noexcept {
    uint64_t m[16];
    for (int i = 0; i < 16; ++i) m[i] = load64(block + 8 * i);
    uint64_t v[16];
    for (int i = 0; i < 8; ++i) {
      v[i] = h[i];
      v[i + 8] = kIv[i];
    }
    v[12] ^= bytes;  // the high word of the 128-bit counter stays 0
    if (last) v[14] = ~v[14];
    round<0>(v, m);
    round<1>(v, m);
    round<2>(v, m);
    round<3>(v, m);
    round<4>(v, m);
    round<5>(v, m);
    round<6>(v, m);
    round<7>(v, m);
    round<8>(v, m);
    round<9>(v, m);
    round<10>(v, m);
    round<11>(v, m);
    for (int i = 0; i < 8; ++i) h[i] ^= v[i] ^ v[i + 8];
  }

  std::array<uint64_t, 8> h_{};
};

}  // namespace predis
