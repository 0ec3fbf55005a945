// How a tile of lanes combines per-lane answers about one bucket. A tile of 16 lanes scans
// a bucket with the (first, step) = (lane, 16) forms of bucket.hpp's scans, one slot per
// lane; these are the reductions that turn the lanes' answers into the bucket's answer. The
// CUDA kernels reduce with warp shuffles; tests/cpp/tile_logic_test.cpp replays the same
// reductions on the host against the one-thread scans of the CPU backend.
#pragma once

#include <cstdint>

#include "predis/bucket.hpp"
#include "predis/platform.hpp"

namespace predis {

// A lane's candidate victim: a slot (or -1) and its score.
struct TileBest {
  int slot;
  uint64_t score;
};

PREDIS_HD inline TileBest tile_best_candidate(int slot, uint64_t score) {
  return TileBest{slot, slot < 0 ? 0 : score};
}

// The better of two candidates: any slot beats none; then the lower score; ties go to the
// lower slot, as the one-thread scan (which keeps the first strict minimum) decides.
PREDIS_HD inline TileBest better_of(const TileBest& a, const TileBest& b) {
  if (a.slot < 0) return b;
  if (b.slot < 0) return a;
  if (b.score < a.score || (b.score == a.score && b.slot < a.slot)) return b;
  return a;
}

// The slot a tile's probe reports: the lowest lane whose find_slot matched (bit l of the
// ballot is lane l), which is the lowest matching slot, as find_slot_all reports.
PREDIS_HD inline int first_lane(uint32_t ballot) {
  return ballot == 0 ? -1 : lowest_bit(ballot);
}

}  // namespace predis
