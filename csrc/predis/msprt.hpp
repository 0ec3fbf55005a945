// The A/B test's sequential statistics (predis.mlops.abtest.MSPRT): an arm's cluster
// variance from its split buckets' moments, and one step of the mixture sequential
// probability ratio test on two arms' hit rates. Native so that a look at a running test
// (every few thousand requests, on the router's thread, holding the GIL) computes both in
// one call: the verdict of a test that goes on costs about 13,000 instructions, most of
// them the Python around the call, instead of 43,000 interpreted.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace predis {

// Below this many requests an arm's moments fit in int64s (sum n^2 <= N^2 < 2^62), and the
// products below fit in 128 bits.
inline constexpr std::int64_t kExactMomentsRequests = std::int64_t{1} << 31;

__extension__ using Int128 = __int128;  // a GCC/Clang type: the exact sums need 126 bits

// The cluster variance of an arm's hit rate from its bucket counts' moments (buckets with
// requests m, requests N, hits H, sum n^2, sum h*n, sum h^2):
//
//     m / (m - 1) * sum((h_b - p n_b)^2) / N^2,  p = H / N,
//
// where N^2 * sum((h - p n)^2) = sum h^2 N^2 - 2 H N sum hn + H^2 sum n^2 is summed exactly
// in 128-bit integers (its terms are up to 2^124 and cancel). NaN with fewer than two
// buckets or no requests. The caller keeps N below kExactMomentsRequests.
inline double cluster_variance_of_moments(const std::int64_t* moments) noexcept {
  const std::int64_t m = moments[0];
  const Int128 total = moments[1];
  const Int128 hits = moments[2];
  if (m < 2 || total <= 0) return std::numeric_limits<double>::quiet_NaN();
  const Int128 scaled =
      moments[5] * total * total - 2 * hits * total * moments[4] + hits * hits * moments[3];
  // long double: one rounding of each side, then of the quotient, for a figure within an
  // ulp of the exact ratio.
  const long double total2 = static_cast<long double>(total * total);
  const long double share = static_cast<long double>(scaled) / (total2 * total2);
  return static_cast<double>(static_cast<long double>(m) / static_cast<long double>(m - 1) * share);
}

// One arm's counts as the test reads them; variance NaN when its requests are independent
// (no clusters).
struct MsprtArm {
  std::int64_t hits = 0;
  std::int64_t requests = 0;
  double variance = std::numeric_limits<double>::quiet_NaN();

  double hit_rate() const noexcept {
    return requests > 0 ? static_cast<double>(hits) / static_cast<double>(requests) : 0.0;
  }
};

// The larger of the binomial and the cluster variance of an arm's hit rate (requests > 0).
inline double arm_variance(const MsprtArm& arm) noexcept {
  const double rate = arm.hit_rate();
  const double binomial = rate * (1 - rate) / static_cast<double>(arm.requests);
  return std::isnan(arm.variance) ? binomial : std::max(binomial, arm.variance);
}

struct MsprtStep {
  double difference;  // challenger's hit rate less the champion's
  double ratio;       // the mixture likelihood ratio (1 before min_requests)
  double p;           // the running always-valid p-value, this step taken in
};

// The mixture SPRT's step on the counts so far (normal mixture of scale sqrt(tau2) over
// the difference, less null_difference, with the variance estimated): the running p-value
// is min(p, 1 / ratio). Before both arms reach min_requests the ratio is 1 and p stays.
inline MsprtStep msprt_step(const MsprtArm& champion, const MsprtArm& challenger,
                            double null_difference, double tau2, std::int64_t min_requests,
                            double p) noexcept {
  const double diff = challenger.hit_rate() - champion.hit_rate();
  const double shift = diff - null_difference;
  double ratio = 1.0;
  if (champion.requests >= min_requests && challenger.requests >= min_requests) {
    // A floor keeps degenerate rates (0 or 1) from dividing by zero.
    const double var = std::max(arm_variance(champion) + arm_variance(challenger), 1e-12);
    const double log_ratio =
        0.5 * std::log(var / (var + tau2)) + tau2 * shift * shift / (2 * var * (var + tau2));
    ratio = std::exp(std::min(log_ratio, 700.0));
    p = std::min(p, 1.0 / ratio);
  }
  return {diff, ratio, p};
}

}  // namespace predis
