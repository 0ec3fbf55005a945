// The documented Predis key hash.
//
// bytes/str keys: h = fmix64(fnv1a64(bytes)), where fnv1a64 is 64-bit FNV-1a (offset basis
//   0xcbf29ce484222325, prime 0x100000001b3) and fmix64 is MurmurHash3's 64-bit finalizer.
//   str keys are hashed as their UTF-8 bytes.
// int keys: the key itself is stored; its bucket position comes from fmix64(key).
// docs/api.md states the same, and tests/core/test_hash.py checks it against Python.
#pragma once

#include <cstddef>
#include <cstdint>

#include "predis/platform.hpp"

namespace predis {

PREDIS_HD inline uint64_t fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

PREDIS_HD inline uint64_t fnv1a64(const uint8_t* data, std::size_t len) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < len; ++i) {
    h ^= data[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

PREDIS_HD inline uint64_t hash_bytes(const uint8_t* data, std::size_t len) {
  return fmix64(fnv1a64(data, len));
}

}  // namespace predis
