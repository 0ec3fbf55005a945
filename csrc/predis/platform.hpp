// Compiler and platform glue shared by host and device code.
#pragma once

#include <cstddef>

#if defined(__CUDACC__)
#define PREDIS_HD __host__ __device__
#else
#define PREDIS_HD
#endif

namespace predis {

// The size of one CPU cache line: the unit of alignment for buckets.
inline constexpr std::size_t kCacheLine = 64;

// The distance that keeps two independently written fields from false sharing. It is two
// cache lines, not one: Intel's spatial prefetcher fetches lines in aligned 128-byte pairs,
// so two fields on neighbouring 64-byte lines still ping-pong between cores. Folly and
// rigtorp/SPSCQueue use the same figure.
inline constexpr std::size_t kFalseSharingRange = 128;

}  // namespace predis
