// predis._core.TrafficSplitHash: the A/B split's keyed BLAKE2b of uint64 keys into buckets,
// remembered per key (predis/split_memo.hpp), a whole array per call with the GIL released
// (predis.mlops.abtest.TrafficSplit uses it).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings/errors.hpp"
#include "bindings/register.hpp"
#include "bindings/without_gil.hpp"
#include "predis/demand_tap.hpp"
#include "predis/live_looks.hpp"
#include "predis/split_memo.hpp"
#include "predis/split_tally.hpp"

namespace py = pybind11;

namespace predis::bindings {

namespace {

using Counts = py::array_t<int64_t, py::array::c_style>;

// A count array the tally adds to in place: exactly int64, of `size` counts.
int64_t* counts_of(Counts& a, uint32_t size, const char* name) {
  if (a.ndim() != 1 || a.shape(0) != static_cast<py::ssize_t>(size) || !a.writeable())
    fail(ErrorKind::kInvalidArgument, std::string(name) + " must be a writeable int64 array of " +
                                          std::to_string(size) + " counts");
  return a.mutable_data();
}

// Whether two (C-contiguous) count arrays share any byte.
bool overlap(const Counts& a, const Counts& b) {
  const auto* a0 = reinterpret_cast<const char*>(a.data());
  const auto* b0 = reinterpret_cast<const char*>(b.data());
  const auto* a1 = a0 + a.nbytes();
  const auto* b1 = b0 + b.nbytes();
  return a0 < b1 && b0 < a1;
}

// Both sides' counts, checked: each array of its size, writeable, and no two overlapping
// (one array in two roles would be counted into twice, and a moments array that is also a
// count array would be garbage).
using Sides = TallySides;
constexpr uint32_t kMoments = kTallyMoments;

Sides sides_of(const SplitMemo& h, uint32_t cutoff, Counts& low_requests, Counts& low_hits,
               Counts& low_moments, Counts& high_requests, Counts& high_hits,
               Counts& high_moments) {
  const uint32_t nb = h.n_buckets();
  if (cutoff > nb) fail(ErrorKind::kInvalidArgument, "cutoff must be in [0, n_buckets]");
  Sides sides{{counts_of(low_requests, nb, "low_requests"), counts_of(low_hits, nb, "low_hits"),
               counts_of(low_moments, kMoments, "low_moments")},
              {counts_of(high_requests, nb, "high_requests"), counts_of(high_hits, nb, "high_hits"),
               counts_of(high_moments, kMoments, "high_moments")}};
  const Counts* all[] = {&low_requests,  &low_hits,  &low_moments,
                         &high_requests, &high_hits, &high_moments};
  for (std::size_t i = 0; i < 6; ++i)
    for (std::size_t j = i + 1; j < 6; ++j)
      if (overlap(*all[i], *all[j]))
        fail(ErrorKind::kInvalidArgument, "the six count arrays must be distinct, not overlapping");
  return sides;
}

// The sums a tally added: (low requests, low hits, high requests, high hits).
struct Before {
  int64_t values[4];

  explicit Before(const Sides& s)
      : values{s.low.moments[1], s.low.moments[2], s.high.moments[1], s.high.moments[2]} {}

  py::tuple added(const Sides& s) const {
    return py::make_tuple(s.low.moments[1] - values[0], s.low.moments[2] - values[1],
                          s.high.moments[1] - values[2], s.high.moments[2] - values[3]);
  }
};

// A LiveLooks with what it reads and writes kept alive: the split's memo and the six count
// arrays (the arms' own, which the router's other tallies add to as well).
struct LiveLooksHandle {
  py::object memo;
  std::vector<Counts> arrays;
  std::unique_ptr<LiveLooks> looks;
};

void check_state(const LookState& s) {
  if (!(s.p >= 0 && s.p <= 1)) fail(ErrorKind::kInvalidArgument, "p must be in [0, 1]");
  if (s.looks_from < 0 || s.next_look < 0 || s.looks_from > kMaxLookPosition ||
      s.next_look > kMaxLookPosition)
    fail(ErrorKind::kInvalidArgument, "looks_from and next_look must be in [0, 2**62]");
}

void check_settings(const LookSettings& s) {
  if (!(s.null_difference > -1 && s.null_difference < 1))
    fail(ErrorKind::kInvalidArgument, "null_difference must be in (-1, 1)");
  if (!(s.tau2 > 0 && s.tau2 < 1)) fail(ErrorKind::kInvalidArgument, "tau2 must be in (0, 1)");
  if (!(s.alpha > 0 && s.alpha < 1)) fail(ErrorKind::kInvalidArgument, "alpha must be in (0, 1)");
  if (s.min_requests < 1) fail(ErrorKind::kInvalidArgument, "min_requests must be >= 1");
  if (s.horizon < 0 || s.budget < 0 || s.horizon > kMaxLookPosition || s.budget > kMaxLookPosition)
    fail(ErrorKind::kInvalidArgument, "horizon and budget must be in [0, 2**62] (0: none)");
  if (s.decide_every < 1 || s.growth < 1 || s.stream_every < 1 || s.decide_every > kMaxLookSpan ||
      s.growth > kMaxLookSpan || s.stream_every > kMaxLookSpan)
    fail(ErrorKind::kInvalidArgument,
         "decide_every, growth and stream_every must be in [1, 2**40]");
}

}  // namespace

void register_split(py::module_& m) {
  py::class_<SplitMemo>(m, "TrafficSplitHash",
                        "Keyed BLAKE2b (8-byte digest) of uint64 keys into buckets, as hashlib "
                        "computes it for key.to_bytes(8, 'little'); each key's bucket is "
                        "remembered in a table of 2**memo_bits slots.")
      .def(py::init([](const py::bytes& secret, uint32_t n_buckets, unsigned memo_bits,
                       bool vectorized) {
             const std::string s = secret;
             if (s.empty() || s.size() > KeyedBlake2b8::kMaxKeyBytes)
               fail(ErrorKind::kInvalidArgument, "secret must be 1 to 64 bytes");
             if (n_buckets == 0 || n_buckets > SplitMemo::kMaxBuckets)
               fail(ErrorKind::kInvalidArgument, "n_buckets must be in [1, 65536]");
             if (memo_bits < SplitMemo::kMinBits || memo_bits > SplitMemo::kMaxBits)
               fail(ErrorKind::kInvalidArgument, "memo_bits must be in [17, 24]");
             return std::make_unique<SplitMemo>(reinterpret_cast<const uint8_t*>(s.data()),
                                                s.size(), n_buckets, memo_bits, vectorized);
           }),
           py::arg("secret"), py::arg("n_buckets"), py::arg("memo_bits") = 18,
           py::arg("vectorized") = true)
      .def_property_readonly("n_buckets", &SplitMemo::n_buckets)
      .def_property_readonly("slots", &SplitMemo::slots)
      .def_property_readonly("vectorized", &SplitMemo::vectorized,
                             "Whether digests are computed with AVX2 (asked for, and the CPU "
                             "has it).")
      .def(
          "buckets",
          [](SplitMemo& h, const py::array_t<uint64_t, py::array::c_style>& keys) {
            if (keys.ndim() != 1) fail(ErrorKind::kInvalidArgument, "keys must be 1-D");
            const auto n = static_cast<std::size_t>(keys.shape(0));
            py::array_t<uint16_t> out(static_cast<py::ssize_t>(n));
            const uint64_t* k = keys.data();
            uint16_t* o = out.mutable_data();
            without_gil([&] {
              h.each_bucket(k, n,
                            [o](std::size_t i, uint32_t b) { o[i] = static_cast<uint16_t>(b); });
            });
            return out;
          },
          py::arg("keys"), "Each key's digest (little-endian u64) modulo n_buckets, as uint16.")
      .def(
          "tally",
          [](SplitMemo& h, const py::array_t<uint64_t, py::array::c_style>& keys,
             const py::array_t<bool, py::array::c_style>& hits, uint32_t cutoff,
             Counts low_requests, Counts low_hits, Counts low_moments, Counts high_requests,
             Counts high_hits, Counts high_moments) {
            if (keys.ndim() != 1 || hits.ndim() != 1 || keys.shape(0) != hits.shape(0))
              fail(ErrorKind::kInvalidArgument, "keys and hits must be 1-D and of one length");
            const Sides sides = sides_of(h, cutoff, low_requests, low_hits, low_moments,
                                         high_requests, high_hits, high_moments);
            const auto n = static_cast<std::size_t>(keys.shape(0));
            const uint64_t* k = keys.data();
            const auto* hit = reinterpret_cast<const uint8_t*>(hits.data());
            const Before before(sides);
            without_gil([&] { tally_into(h, k, hit, n, cutoff, sides); });
            return before.added(sides);
          },
          py::arg("keys"), py::arg("hits").noconvert(), py::arg("cutoff"),
          py::arg("low_requests").noconvert(), py::arg("low_hits").noconvert(),
          py::arg("low_moments").noconvert(), py::arg("high_requests").noconvert(),
          py::arg("high_hits").noconvert(), py::arg("high_moments").noconvert(),
          "Count each key's request (and its hit) in its bucket: in the low arrays for buckets "
          "below cutoff, else in the high ones. Each side's moments (six int64s: buckets with "
          "requests, requests, hits, and the sums of requests squared, hits times requests and "
          "hits squared over the buckets) are kept up to date with them. Returns (low requests, "
          "low "
          "hits, high requests, high hits) added.")
      .def(
          "tally_tap",
          [](SplitMemo& h, DemandTap& tap, uint64_t max_count, uint32_t cutoff, Counts low_requests,
             Counts low_hits, Counts low_moments, Counts high_requests, Counts high_hits,
             Counts high_moments) {
            const Sides sides = sides_of(h, cutoff, low_requests, low_hits, low_moments,
                                         high_requests, high_hits, high_moments);
            const Before before(sides);
            const std::size_t got = without_gil([&] {
              // The consumer's calls are serialised: nothing else peeks meanwhile.
              const std::size_t n = static_cast<std::size_t>(
                  std::min<uint64_t>(tap.pending() - tap.peeked(), max_count));
              std::vector<uint64_t> keys(n);
              std::vector<uint8_t> hits(n);
              const std::size_t peeked = tap.peek(keys.data(), hits.data(), n);
              tally_into(h, keys.data(), hits.data(), peeked, cutoff, sides);
              return peeked;
            });
            return py::make_tuple(got, before.added(sides));
          },
          py::arg("tap"), py::arg("max_count"), py::arg("cutoff"),
          py::arg("low_requests").noconvert(), py::arg("low_hits").noconvert(),
          py::arg("low_moments").noconvert(), py::arg("high_requests").noconvert(),
          py::arg("high_hits").noconvert(), py::arg("high_moments").noconvert(),
          "tally() of the requests a DemandTap keeps that were not peeked at (up to "
          "max_count, oldest first), peeked at: left kept, for a later take(). Returns (requests "
          "peeked, (low requests, low hits, high requests, high hits) added). The tap's "
          "consumer calls it, never overlapping its other calls.")
      .def(
          "digest", [](const SplitMemo& h, uint64_t key) { return h.digest(key); }, py::arg("key"),
          "One key's 8-byte digest read as a little-endian u64 (not remembered).");

  py::class_<LiveLooksHandle>(
      m, "LiveLooks",
      "The looks at a running test or watch that go on, done natively (predis/live_looks.hpp): "
      "each counts the requests a DemandTap keeps for the arms, as tally_tap() does, and when "
      "a look is due steps the mSPRT on the arms' bucket moments. The loop wakes (look() "
      "returns wake=True) only when the test may have decided, reached its horizon or budget, "
      "or outgrown the exact moments.")
      .def(py::init([](const py::object& split, uint32_t cutoff, Counts low_requests,
                       Counts low_hits, Counts low_moments, Counts high_requests, Counts high_hits,
                       Counts high_moments, double null_difference, double tau2, double alpha,
                       int64_t min_requests, bool base_is_high, int64_t horizon, int64_t budget,
                       int64_t decide_every, int64_t growth, int64_t stream_every, double p,
                       int64_t looks_from, int64_t next_look) {
             auto& memo = split.cast<SplitMemo&>();
             const Sides sides = sides_of(memo, cutoff, low_requests, low_hits, low_moments,
                                          high_requests, high_hits, high_moments);
             LookSettings settings;
             settings.null_difference = null_difference;
             settings.tau2 = tau2;
             settings.alpha = alpha;
             settings.min_requests = min_requests;
             settings.base_is_high = base_is_high;
             settings.horizon = horizon;
             settings.budget = budget;
             settings.decide_every = decide_every;
             settings.growth = growth;
             settings.stream_every = stream_every;
             check_settings(settings);
             const LookState state{p, looks_from, next_look};
             check_state(state);
             auto h = std::make_unique<LiveLooksHandle>();
             h->memo = split;
             h->arrays = {low_requests,  low_hits,  low_moments,
                          high_requests, high_hits, high_moments};
             h->looks = std::make_unique<LiveLooks>(memo, cutoff, sides, settings, state);
             return h;
           }),
           py::arg("split"), py::arg("cutoff"), py::arg("low_requests").noconvert(),
           py::arg("low_hits").noconvert(), py::arg("low_moments").noconvert(),
           py::arg("high_requests").noconvert(), py::arg("high_hits").noconvert(),
           py::arg("high_moments").noconvert(), py::arg("null_difference"), py::arg("tau2"),
           py::arg("alpha"), py::arg("min_requests"), py::arg("base_is_high"), py::arg("horizon"),
           py::arg("budget"), py::arg("decide_every"), py::arg("growth"), py::arg("stream_every"),
           py::arg("p"), py::arg("looks_from"), py::arg("next_look"))
      .def(
          "look",
          [](LiveLooksHandle& h, DemandTap& tap, uint64_t max_count, int64_t released) {
            if (released < 0 || released > kMaxLookPosition)
              fail(ErrorKind::kInvalidArgument, "released must be in [0, 2**62]");
            const LookOutcome out = without_gil([&] {
              // The consumer's calls are serialised: nothing else peeks meanwhile.
              return h.looks->look(tap, static_cast<std::size_t>(max_count), released);
            });
            return py::make_tuple(out.counted, out.position, out.wake, out.every);
          },
          py::arg("tap"), py::arg("max_count"), py::arg("released"),
          "Count the tap's unpeeked requests (up to max_count) for the arms, then look if one is "
          "due at released + the tap's peeked: (counted, position, wake, every), every the "
          "requests to the next look when this one went on (0 when none was due or it woke).")
      .def(
          "take_pending",
          [](LiveLooksHandle& h) {
            const auto s = h.looks->take_pending();
            return py::make_tuple(s[0], s[1], s[2], s[3]);
          },
          "Requests and hits counted since the last call (low requests, low hits, high "
          "requests, high hits), zeroed.")
      .def_property_readonly("p", [](const LiveLooksHandle& h) { return h.looks->state().p; })
      .def_property_readonly("looks_from",
                             [](const LiveLooksHandle& h) { return h.looks->state().looks_from; })
      .def_property_readonly("next_look",
                             [](const LiveLooksHandle& h) { return h.looks->state().next_look; })
      .def(
          "set_state",
          [](LiveLooksHandle& h, double p, int64_t looks_from, int64_t next_look) {
            const LookState state{p, looks_from, next_look};
            check_state(state);
            h.looks->set_state(state);
          },
          py::arg("p"), py::arg("looks_from"), py::arg("next_look"),
          "The running p-value and the schedule, after a look of the loop's own.");
}

}  // namespace predis::bindings
