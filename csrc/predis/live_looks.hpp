// The looks at a running A/B test or rollback watch that the MLOps loop (Python) need not
// see. Serving a live cache, the router's thread looks every few thousand requests: it
// counts the requests its demand tap kept for the arms, and when a look is due it steps the
// mSPRT on the arms' bucket moments. Most looks go on, and those are all done here, in one
// call without the GIL; the loop wakes only when the test may have decided, reached its
// horizon or budget, or outgrown the exact moments. It then looks itself, on the same
// counts, starting from this running p-value and schedule (and hands its own back after).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "predis/demand_tap.hpp"
#include "predis/msprt.hpp"
#include "predis/split_memo.hpp"
#include "predis/split_tally.hpp"

namespace predis {

// Positions, counts and the schedule's spans are below this (the binding checks), so a
// position plus a span cannot overflow.
inline constexpr std::int64_t kMaxLookPosition = std::int64_t{1} << 62;
inline constexpr std::int64_t kMaxLookSpan = std::int64_t{1} << 40;

// What a look checks, fixed for one test or watch.
struct LookSettings {
  double null_difference = 0.0;
  double tau2 = 0.0;
  double alpha = 0.0;
  std::int64_t min_requests = 1;
  bool base_is_high = true;       // the mSPRT's base arm: the high side (a test's champion), or
                                  // the low side (a watch's previous champion)
  std::int64_t horizon = 0;       // wake once both arms have this many requests (0: never)
  std::int64_t budget = 0;        // wake once the other arm (not the base) has this many (0: never)
  std::int64_t decide_every = 1;  // the schedule: every decide_every requests, or once the
  std::int64_t growth = 1;        // test has run longer, every growth-th of its requests,
  std::int64_t stream_every = 1;  // up to stream_every
};

// What changes from look to look, and what the loop and this share.
struct LookState {
  double p = 1.0;               // the running always-valid p-value
  std::int64_t looks_from = 0;  // the position the test started at
  std::int64_t next_look = 0;   // the position of the next look due
};

struct LookOutcome {
  std::size_t counted = 0;  // requests peeked at and counted for the arms
  std::int64_t position = 0;
  bool wake = false;       // the loop must look (the schedule is left for it to plan)
  std::int64_t every = 0;  // when a look went on: requests to the next one (0: none due)
};

class LiveLooks {
 public:
  LiveLooks(SplitMemo& memo, std::uint32_t cutoff, TallySides sides, const LookSettings& settings,
            const LookState& state)
      : memo_(memo), cutoff_(cutoff), sides_(sides), settings_(settings), state_(state) {}

  // Counts up to max_count of the requests the tap keeps that were not peeked at (they stay
  // kept), then looks if one is due at `released` (the stream's position of the tap's oldest
  // kept request) plus what has been peeked. The tap's consumer calls it, without the GIL;
  // the calls of one LiveLooks are serialised here.
  LookOutcome look(DemandTap& tap, std::size_t max_count, std::int64_t released) {
    const std::lock_guard<std::mutex> guard(mu_);
    const std::size_t n = std::min(tap.pending() - tap.peeked(), max_count);
    keys_.resize(n);
    hits_.resize(n);
    const std::int64_t before[4] = {sides_.low.moments[1], sides_.low.moments[2],
                                    sides_.high.moments[1], sides_.high.moments[2]};
    const std::size_t counted = tap.peek(keys_.data(), hits_.data(), n);
    tally_into(memo_, keys_.data(), hits_.data(), counted, cutoff_, sides_);
    pending_[0] += sides_.low.moments[1] - before[0];
    pending_[1] += sides_.low.moments[2] - before[1];
    pending_[2] += sides_.high.moments[1] - before[2];
    pending_[3] += sides_.high.moments[2] - before[3];
    LookOutcome out;
    out.counted = counted;
    out.position = released + static_cast<std::int64_t>(tap.peeked());
    if (out.position < state_.next_look) return out;
    const std::int64_t* base = settings_.base_is_high ? sides_.high.moments : sides_.low.moments;
    const std::int64_t* other = settings_.base_is_high ? sides_.low.moments : sides_.high.moments;
    const LookSettings& s = settings_;
    if (base[1] >= kExactMomentsRequests || other[1] >= kExactMomentsRequests) {
      out.wake = true;  // the loop computes the variance from the bucket arrays
      return out;
    }
    const MsprtArm a{base[2], base[1], cluster_variance_of_moments(base)};
    const MsprtArm b{other[2], other[1], cluster_variance_of_moments(other)};
    state_.p = msprt_step(a, b, s.null_difference, s.tau2, s.min_requests, state_.p).p;
    out.wake = state_.p <= s.alpha ||
               (s.horizon > 0 && std::min(a.requests, b.requests) >= s.horizon) ||
               (s.budget > 0 && b.requests >= s.budget);
    if (out.wake) return out;
    const std::int64_t grown =
        std::min((out.position - state_.looks_from) / s.growth, s.stream_every);
    out.every = std::max(s.decide_every, grown);
    state_.next_look = out.position + out.every;
    return out;
  }

  // The requests and hits counted since the last call (low requests, low hits, high
  // requests, high hits), for the loop to add to its arms' counts; zeroed.
  std::array<std::int64_t, 4> take_pending() {
    const std::lock_guard<std::mutex> guard(mu_);
    const std::array<std::int64_t, 4> out = pending_;
    pending_ = {};
    return out;
  }

  LookState state() const {
    const std::lock_guard<std::mutex> guard(mu_);
    return state_;
  }
  void set_state(const LookState& state) {
    const std::lock_guard<std::mutex> guard(mu_);
    state_ = state;
  }

 private:
  mutable std::mutex mu_;
  SplitMemo& memo_;
  std::uint32_t cutoff_;
  TallySides sides_;
  LookSettings settings_;
  LookState state_;
  std::array<std::int64_t, 4> pending_{};
  std::vector<std::uint64_t> keys_;  // the peeked requests, reused from look to look
  std::vector<std::uint8_t> hits_;
};

}  // namespace predis
