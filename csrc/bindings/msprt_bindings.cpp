// predis._core's A/B statistics (predis/msprt.hpp): the cluster variance from an arm's
// bucket moments and the mSPRT's step, for predis.mlops.abtest.MSPRT, whose looks at a
// running test come here in one call.
#include <cmath>
#include <cstdint>
#include <string>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings/errors.hpp"
#include "bindings/register.hpp"
#include "predis/msprt.hpp"

namespace py = pybind11;

namespace predis::bindings {

namespace {

// Safe casts only: int64 arrays and lists of ints, never truncated floats.
using Moments = py::array_t<std::int64_t, py::array::c_style>;

constexpr py::ssize_t kMoments = 6;

Moments moments_of(const py::handle& given) {
  Moments m = Moments::ensure(given);
  if (!m || m.ndim() != 1 || m.shape(0) != kMoments) {
    PyErr_Clear();  // ensure() leaves the conversion's error set when it fails
    fail(ErrorKind::kInvalidArgument, "moments must be six integers");
  }
  return m;
}

// variance: NaN for none (computed here, or a caller's checked by variance_arg).
MsprtArm arm_of(std::int64_t hits, std::int64_t requests, double variance, const char* name) {
  if (requests < 0 || hits < 0 || hits > requests)
    fail(ErrorKind::kInvalidArgument, std::string(name) + ": need integers 0 <= hits <= requests");
  return MsprtArm{hits, requests, variance};
}

// The cluster variance of moments, NaN for none; false when their requests are too many
// for the exact sums (the caller then uses the bucket arrays).
bool variance_of(const py::handle& given, double& out) {
  if (given.is_none()) {
    out = std::nan("");
    return true;
  }
  const Moments m = moments_of(given);
  const std::int64_t* v = m.data();
  if (v[1] >= kExactMomentsRequests) return false;
  // The tally keeps each sum exact below kExactMomentsRequests; anything else is not moments.
  if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[2] > v[1] || v[0] > v[1] || v[3] < 0 || v[4] < 0 ||
      v[5] < 0)
    fail(ErrorKind::kInvalidArgument, "moments must be non-negative, with hits <= requests");
  out = cluster_variance_of_moments(v);
  return true;
}

void check_test(double null_difference, double tau2, std::int64_t min_requests, double p) {
  if (!(null_difference > -1 && null_difference < 1))
    fail(ErrorKind::kInvalidArgument, "null_difference must be in (-1, 1)");
  if (!(tau2 > 0 && tau2 < 1)) fail(ErrorKind::kInvalidArgument, "tau2 must be in (0, 1)");
  if (min_requests < 1) fail(ErrorKind::kInvalidArgument, "min_requests must be >= 1");
  if (!(p >= 0 && p <= 1)) fail(ErrorKind::kInvalidArgument, "p must be in [0, 1]");
}

// The step on two arms' counts and variances (NaN: none), the counts checked (the test's
// settings are the caller's to check first).
MsprtStep step_of(std::int64_t champion_hits, std::int64_t champion_requests, double va,
                  std::int64_t challenger_hits, std::int64_t challenger_requests, double vb,
                  double null_difference, double tau2, std::int64_t min_requests, double p) {
  const MsprtArm a = arm_of(champion_hits, champion_requests, va, "champion");
  const MsprtArm b = arm_of(challenger_hits, challenger_requests, vb, "challenger");
  return msprt_step(a, b, null_difference, tau2, min_requests, p);
}

py::object variance_or_none(double v) {
  if (std::isnan(v)) return py::none();
  return py::float_(v);
}

// A caller's variance: None for none (NaN here), else a finite non-negative float.
double variance_arg(const py::handle& given) {
  if (given.is_none()) return std::nan("");
  const auto v = given.cast<double>();
  if (!(v >= 0 && std::isfinite(v)))
    fail(ErrorKind::kInvalidArgument, "a variance must be finite and non-negative, or None");
  return v;
}

}  // namespace

void register_msprt(py::module_& m) {
  m.attr("EXACT_MOMENTS_REQUESTS") = kExactMomentsRequests;
  m.def(
      "cluster_variance_of_moments",
      [](const py::handle& moments) -> py::object {
        if (moments.is_none()) fail(ErrorKind::kInvalidArgument, "moments must be six integers");
        double v = 0;
        if (!variance_of(moments, v))
          fail(ErrorKind::kInvalidArgument,
               "moments of 2**31 or more requests may have wrapped; use the bucket arrays");
        return variance_or_none(v);
      },
      py::arg("moments"),
      "The cluster variance of an arm's hit rate from its bucket moments (buckets with "
      "requests, requests, hits, sum n^2, sum h*n, sum h^2), summed exactly; None with fewer "
      "than two buckets. Below 2**31 requests only.");
  m.def(
      "msprt_arm_variance",
      [](std::int64_t hits, std::int64_t requests, const py::handle& variance) {
        const MsprtArm arm = arm_of(hits, requests, variance_arg(variance), "arm");
        if (arm.requests < 1) fail(ErrorKind::kInvalidArgument, "arm: need requests >= 1");
        return arm_variance(arm);
      },
      py::arg("hits"), py::arg("requests"), py::arg("variance"),
      "The larger of the binomial and the cluster variance (None: none) of an arm's hit rate.");
  m.def(
      "msprt_step",
      [](std::int64_t champion_hits, std::int64_t champion_requests,
         const py::handle& champion_variance, std::int64_t challenger_hits,
         std::int64_t challenger_requests, const py::handle& challenger_variance,
         double null_difference, double tau2, std::int64_t min_requests, double p) {
        check_test(null_difference, tau2, min_requests, p);
        const MsprtStep s =
            step_of(champion_hits, champion_requests, variance_arg(champion_variance),
                    challenger_hits, challenger_requests, variance_arg(challenger_variance),
                    null_difference, tau2, min_requests, p);
        return py::make_tuple(s.difference, s.ratio, s.p);
      },
      py::arg("champion_hits"), py::arg("champion_requests"), py::arg("champion_variance"),
      py::arg("challenger_hits"), py::arg("challenger_requests"), py::arg("challenger_variance"),
      py::arg("null_difference"), py::arg("tau2"), py::arg("min_requests"), py::arg("p"),
      "One step of the mixture SPRT on the counts so far (variances None: binomial only): "
      "(difference, likelihood ratio, running p-value).");
  m.def(
      "msprt_look",
      [](std::int64_t champion_hits, std::int64_t champion_requests,
         const py::handle& champion_moments, std::int64_t challenger_hits,
         std::int64_t challenger_requests, const py::handle& challenger_moments,
         double null_difference, double tau2, std::int64_t min_requests, double p) -> py::object {
        check_test(null_difference, tau2, min_requests, p);
        double va = 0;
        double vb = 0;
        if (!variance_of(champion_moments, va) || !variance_of(challenger_moments, vb))
          return py::none();
        const MsprtStep s =
            step_of(champion_hits, champion_requests, va, challenger_hits, challenger_requests, vb,
                    null_difference, tau2, min_requests, p);
        return py::make_tuple(s.difference, s.ratio, s.p, variance_or_none(va),
                              variance_or_none(vb));
      },
      py::arg("champion_hits"), py::arg("champion_requests"), py::arg("champion_moments"),
      py::arg("challenger_hits"), py::arg("challenger_requests"), py::arg("challenger_moments"),
      py::arg("null_difference"), py::arg("tau2"), py::arg("min_requests"), py::arg("p"),
      "msprt_step with each arm's cluster variance from its bucket moments (None: none): "
      "(difference, likelihood ratio, running p-value, champion's variance, challenger's). "
      "None when a moments' requests reach 2**31 (their sums may have wrapped).");
}

}  // namespace predis::bindings
