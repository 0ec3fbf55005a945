// Segment format 2's filter (predis.mlops.segment_codec): the access events laid out column
// by column in AccessEvent's field order, the timestamps delta-coded (modulo 2**64), every
// column byte-shuffled (byte 0 of each value, then byte 1, ...). The events may arrive in
// several parts; they are read as one sequence, so no caller has to join them first.
//
// Event bytes are read as numpy's EVENT_DTYPE lays them out: little-endian fields at
// AccessEvent's offsets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "predis/access_log.hpp"

namespace predis {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the segment filter moves little-endian words as they lie in memory");
// An event is three 8-byte words: the key, the timestamp, and value_size with the one-byte
// fields. Shuffled, byte b of the third word of every event goes to the column starting
// 16 * total + b * total bytes in: value_size's bytes, then op, hit, key_kind, reserved,
// exactly the field-order layout.
static_assert(offsetof(AccessEvent, key) == 0 && offsetof(AccessEvent, timestamp_ns) == 8 &&
                  offsetof(AccessEvent, value_size) == 16 && offsetof(AccessEvent, op) == 20 &&
                  offsetof(AccessEvent, hit) == 21 && offsetof(AccessEvent, key_kind) == 22 &&
                  offsetof(AccessEvent, reserved) == 23,
              "segment format 2 reads the event as three 8-byte words in field order");

// A run of events to shuffle: `size` events' bytes at `data`, which need not be aligned
// (a numpy view of a byte buffer may not be).
struct EventSpan {
  const uint8_t* data;
  std::size_t size;
};

// The range of the timestamps shuffled (both 0 when there were none).
struct TimeRange {
  uint64_t min = 0;
  uint64_t max = 0;
};

namespace detail {

inline uint64_t load64(const uint8_t* p) noexcept {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

inline void store64(uint8_t* p, uint64_t v) noexcept {
  std::memcpy(p, &v, 8);
}

// Transposes the 8x8 byte matrix whose row i is x[i] (byte b at bits 8b): afterwards x[b]
// holds byte b of every row, row i's at bits 8i. Three rounds of block swaps (4x4, 2x2,
// 1x1), as in Hacker's Delight's transpose8.
inline void transpose8x8(uint64_t* x) noexcept {
  for (int i = 0; i < 4; ++i) {
    const uint64_t t = ((x[i] >> 32) ^ x[i + 4]) & 0x00000000FFFFFFFFULL;
    x[i] ^= t << 32;
    x[i + 4] ^= t;
  }
  for (int i : {0, 1, 4, 5}) {
    const uint64_t t = ((x[i] >> 16) ^ x[i + 2]) & 0x0000FFFF0000FFFFULL;
    x[i] ^= t << 16;
    x[i + 2] ^= t;
  }
  for (int i : {0, 2, 4, 6}) {
    const uint64_t t = ((x[i] >> 8) ^ x[i + 1]) & 0x00FF00FF00FF00FFULL;
    x[i] ^= t << 8;
    x[i + 1] ^= t;
  }
}

}  // namespace detail

// Fills out[0, 24 * total) where total is the parts' event count; returns the timestamps'
// range. The output is what segment_codec's decoder reads back.
inline TimeRange shuffle_events(const EventSpan* parts, std::size_t n_parts, uint8_t* out) {
  constexpr std::size_t kEvent = sizeof(AccessEvent);
  std::size_t total = 0;
  for (std::size_t p = 0; p < n_parts; ++p) total += parts[p].size;
  TimeRange range;
  if (total == 0) return range;
  range.min = UINT64_MAX;
  uint64_t previous = 0;  // the first timestamp is kept as it is (its delta from 0)
  // The event's word w as it is stored: the timestamp's is its delta.
  auto word = [&](const uint8_t* event, int w) {
    uint64_t v = detail::load64(event + 8 * w);
    if (w == 1) {
      range.min = v < range.min ? v : range.min;
      range.max = v > range.max ? v : range.max;
      const uint64_t delta = v - previous;  // unsigned: wraps modulo 2**64, as the decoder's
      previous = v;
      v = delta;
    }
    return v;
  };
  std::size_t at = 0;  // events written so far
  for (std::size_t p = 0; p < n_parts; ++p) {
    const uint8_t* src = parts[p].data;
    const std::size_t n = parts[p].size;
    std::size_t k = 0;
    for (; k + 8 <= n; k += 8, at += 8) {  // eight events: three 8x8 byte transposes
      uint64_t x[3][8];
      for (int i = 0; i < 8; ++i)
        for (int w = 0; w < 3; ++w) x[w][i] = word(src + (k + i) * kEvent, w);
      for (int w = 0; w < 3; ++w) {
        detail::transpose8x8(x[w]);
        uint8_t* column = out + 8 * w * total + at;
        for (int b = 0; b < 8; ++b) detail::store64(column + b * total, x[w][b]);
      }
    }
    for (; k < n; ++k, ++at) {  // the part's last few, byte by byte
      for (int w = 0; w < 3; ++w) {
        const uint64_t v = word(src + k * kEvent, w);
        uint8_t* column = out + 8 * w * total + at;
        for (int b = 0; b < 8; ++b) column[b * total] = static_cast<uint8_t>(v >> (8 * b));
      }
    }
  }
  return range;
}

}  // namespace predis
