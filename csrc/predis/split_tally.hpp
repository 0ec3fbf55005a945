// The A/B split's per-bucket tally: each request counted in its arm's bucket, and the arm's
// bucket moments kept up to date request by request (what the mSPRT's cluster variance
// reads, predis/msprt.hpp). Used by the split's bindings and by the live looks.
#pragma once

#include <cstddef>
#include <cstdint>

#include "predis/split_memo.hpp"

namespace predis {

// Six int64s per arm: buckets with requests, N, H, sum n^2, sum h*n, sum h^2.
inline constexpr std::uint32_t kTallyMoments = 6;

// An arm's per-bucket counts and their moments (host arrays the caller owns).
struct TallyArm {
  std::int64_t* requests;
  std::int64_t* hits;
  std::int64_t* moments;

  void add(std::uint32_t b, std::int64_t x) const noexcept {
    // Unsigned arithmetic: the squares wrap rather than overflow past 2^63 (a caller reads
    // them only while they fit).
    const auto n = static_cast<std::uint64_t>(requests[b]);
    const auto h = static_cast<std::uint64_t>(hits[b]);
    const auto u = static_cast<std::uint64_t>(x);
    auto* m = reinterpret_cast<std::uint64_t*>(moments);
    m[0] += n == 0 ? 1 : 0;
    m[1] += 1;
    m[2] += u;
    m[3] += 2 * n + 1;        // (n+1)^2 - n^2
    m[4] += h + u * (n + 1);  // (h+x)(n+1) - hn
    m[5] += u * (2 * h + 1);  // (h+x)^2 - h^2
    requests[b] += 1;
    hits[b] += x;
  }
};

// Buckets below the cutoff count into `low` (the challenger's side), the rest into `high`.
struct TallySides {
  TallyArm low;
  TallyArm high;
};

// Counts n keys and hit flags into their sides (call without the GIL).
inline void tally_into(SplitMemo& h, const std::uint64_t* keys, const std::uint8_t* hits,
                       std::size_t n, std::uint32_t cutoff, const TallySides& sides) {
  h.each_bucket(keys, n, [&](std::size_t i, std::uint32_t b) {
    (b < cutoff ? sides.low : sides.high).add(b, hits[i] ? 1 : 0);
  });
}

}  // namespace predis
