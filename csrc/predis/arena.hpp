// Value records and their size classes, shared by every backend's arena.
//
// A record is a RecordHeader, then the bytes key (if any), then the value. Records live in
// chunks of a size class; classes grow by 1.25x (rounded to 8 bytes) from 32 bytes, so a
// record wastes at most a fifth of its chunk. Capacity is counted in chunk bytes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "predis/platform.hpp"

namespace predis {

struct RecordHeader {
  uint32_t value_len;
  uint32_t key_len;  // 0 for int keys
};
static_assert(sizeof(RecordHeader) == 8, "record header layout");

inline constexpr uint64_t kMinChunk = 32;

PREDIS_HD inline uint64_t record_size(uint32_t key_len, uint32_t value_len) {
  return sizeof(RecordHeader) + uint64_t{key_len} + uint64_t{value_len};
}

// Size of class c+1 from class c.
PREDIS_HD inline uint64_t next_class_size(uint64_t size) {
  const uint64_t grown = size + size / 4;
  return (grown + 7) & ~uint64_t{7};
}

}  // namespace predis
