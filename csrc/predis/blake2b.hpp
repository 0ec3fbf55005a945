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

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PREDIS_BLAKE2B_AVX2 1
#endif

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

#ifdef PREDIS_BLAKE2B_AVX2
  // Whether this CPU runs hash4_avx2.
  static bool has_avx2() noexcept { return __builtin_cpu_supports("avx2") != 0; }

  // hash() of four keys at once, one per 64-bit lane of AVX2 registers: the same steps as
  // the portable code, a quarter of the instructions per key. Only on a CPU with AVX2
  // (has_avx2()).
  [[gnu::target("avx2")]] void hash4_avx2(const uint64_t* msg, uint64_t* out) const noexcept {
    __m256i v[16];
    for (int i = 0; i < 8; ++i) {
      v[i] = _mm256_set1_epi64x(static_cast<int64_t>(h_[i]));
      v[i + 8] = _mm256_set1_epi64x(static_cast<int64_t>(kIv[i]));
    }
    // The byte counter (128 + 8) and the final block's flag, as in compress().
    v[12] = _mm256_xor_si256(v[12], _mm256_set1_epi64x(128 + 8));
    v[14] = _mm256_xor_si256(v[14], _mm256_set1_epi64x(-1));
    const __m256i m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(msg));
    round4<0>(v, m);
    round4<1>(v, m);
    round4<2>(v, m);
    round4<3>(v, m);
    round4<4>(v, m);
    round4<5>(v, m);
    round4<6>(v, m);
    round4<7>(v, m);
    round4<8>(v, m);
    round4<9>(v, m);
    round4<10>(v, m);
    round4<11>(v, m);
    const __m256i h0 = _mm256_set1_epi64x(static_cast<int64_t>(h_[0]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                        _mm256_xor_si256(h0, _mm256_xor_si256(v[0], v[8])));
  }
#endif

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

#ifdef PREDIS_BLAKE2B_AVX2
  [[gnu::target("avx2"), gnu::always_inline]] static inline __m256i rotr24(__m256i x) noexcept {
    const __m256i idx = _mm256_setr_epi8(3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10, 3, 4,
                                         5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10);
    return _mm256_shuffle_epi8(x, idx);
  }

  [[gnu::target("avx2"), gnu::always_inline]] static inline __m256i rotr16(__m256i x) noexcept {
    const __m256i idx = _mm256_setr_epi8(2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9, 2, 3,
                                         4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9);
    return _mm256_shuffle_epi8(x, idx);
  }

  // g() on four lanes. The message block is the key's 8 bytes and zeros: of its 16 words
  // only m[0] is not 0, so a step adds the key only where sigma picks word 0 (X, Y).
  template <bool X, bool Y>
  [[gnu::target("avx2"), gnu::always_inline]] static inline void g4(__m256i& a, __m256i& b,
                                                                    __m256i& c, __m256i& d,
                                                                    __m256i m) noexcept {
    a = _mm256_add_epi64(a, b);
    if constexpr (X) a = _mm256_add_epi64(a, m);
    d = _mm256_shuffle_epi32(_mm256_xor_si256(d, a), _MM_SHUFFLE(2, 3, 0, 1));  // rotr 32
    c = _mm256_add_epi64(c, d);
    b = rotr24(_mm256_xor_si256(b, c));
    a = _mm256_add_epi64(a, b);
    if constexpr (Y) a = _mm256_add_epi64(a, m);
    d = rotr16(_mm256_xor_si256(d, a));
    c = _mm256_add_epi64(c, d);
    b = _mm256_xor_si256(b, c);
    b = _mm256_or_si256(_mm256_srli_epi64(b, 63), _mm256_add_epi64(b, b));  // rotr 63
  }

  template <int R>
  [[gnu::target("avx2"), gnu::always_inline]] static inline void round4(__m256i* v,
                                                                        __m256i m) noexcept {
    constexpr const uint8_t* s = kSigma[R];
    g4<s[0] == 0, s[1] == 0>(v[0], v[4], v[8], v[12], m);
    g4<s[2] == 0, s[3] == 0>(v[1], v[5], v[9], v[13], m);
    g4<s[4] == 0, s[5] == 0>(v[2], v[6], v[10], v[14], m);
    g4<s[6] == 0, s[7] == 0>(v[3], v[7], v[11], v[15], m);
    g4<s[8] == 0, s[9] == 0>(v[0], v[5], v[10], v[15], m);
    g4<s[10] == 0, s[11] == 0>(v[1], v[6], v[11], v[12], m);
    g4<s[12] == 0, s[13] == 0>(v[2], v[7], v[8], v[13], m);
    g4<s[14] == 0, s[15] == 0>(v[3], v[4], v[9], v[14], m);
  }
#endif

  std::array<uint64_t, 8> h_{};
};

}  // namespace predis
