// predis._core.PatternTracker: the prefetcher's candidate generator over numpy key batches.
// Calls serialize on a mutex and release the GIL, so a drain thread can feed the tracker
// while the host keeps running Python.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings/errors.hpp"
#include "bindings/register.hpp"
#include "predis/pattern_tracker.hpp"

namespace py = pybind11;

namespace predis::bindings {
namespace {

struct LockedTracker {
  explicit LockedTracker(const TrackerConfig& c) : tracker(c) {}
  std::mutex mu;
  PatternTracker tracker;
};

void check_range(const char* name, uint64_t v, uint64_t lo, uint64_t hi) {
  if (v < lo || v > hi) {
    fail(ErrorKind::kInvalidArgument, std::string(name) + " must be in [" + std::to_string(lo) +
                                          ", " + std::to_string(hi) + "], got " +
                                          std::to_string(v));
  }
}

// Keeps one row per candidate: the one from the latest request (its features are freshest).
void dedupe_latest(std::vector<uint32_t>& req, std::vector<uint64_t>& cands,
                   std::vector<float>& feats) {
  std::unordered_map<uint64_t, std::size_t> last;
  last.reserve(cands.size());
  for (std::size_t r = 0; r < cands.size(); ++r) last[cands[r]] = r;
  if (last.size() == cands.size()) return;
  std::size_t out = 0;
  for (std::size_t r = 0; r < cands.size(); ++r) {
    if (last[cands[r]] != r) continue;
    req[out] = req[r];
    cands[out] = cands[r];
    std::copy_n(feats.begin() + static_cast<std::ptrdiff_t>(r * kNumFeatures), kNumFeatures,
                feats.begin() + static_cast<std::ptrdiff_t>(out * kNumFeatures));
    ++out;
  }
  req.resize(out);
  cands.resize(out);
  feats.resize(out * kNumFeatures);
}

}  // namespace

void register_prefetch(py::module_& m) {
  m.attr("TRACKER_FEATURES") = static_cast<int>(kNumFeatures);
  py::class_<LockedTracker>(m, "PatternTracker",
                            "Candidate generator: successor, stride and hot-key statistics.")
      .def(py::init([](uint32_t table_bits, uint32_t successors, uint32_t window, uint32_t streams,
                       uint32_t stride_depth, uint64_t max_stride, uint32_t sketch_bits,
                       uint32_t hot, uint32_t hot_per_request, uint32_t max_candidates) {
             check_range("table_bits", table_bits, 4, 24);
             check_range("successors", successors, 1, 64);
             check_range("window", window, 1, 256);
             check_range("streams", streams, 1, 1024);
             check_range("stride_depth", stride_depth, 0, 256);
             check_range("max_stride", max_stride, 1, uint64_t{1} << 32);
             check_range("sketch_bits", sketch_bits, 8, 24);
             check_range("hot", hot, 1, 4096);
             check_range("hot_per_request", hot_per_request, 0, hot);
             check_range("max_candidates", max_candidates, 1, 4096);
             TrackerConfig c{table_bits, successors,  window, streams,         stride_depth,
                             max_stride, sketch_bits, hot,    hot_per_request, max_candidates};
             return std::make_unique<LockedTracker>(c);
           }),
           py::kw_only(), py::arg("table_bits") = 14, py::arg("successors") = 16,
           py::arg("window") = 12, py::arg("streams") = 16, py::arg("stride_depth") = 32,
           py::arg("max_stride") = 64, py::arg("sketch_bits") = 16, py::arg("hot") = 32,
           py::arg("hot_per_request") = 2, py::arg("max_candidates") = 48)
      .def_property_readonly("requests",
                             [](LockedTracker& t) {
                               std::lock_guard<std::mutex> g(t.mu);
                               return t.tracker.requests();
                             })
      .def_property_readonly("memory_bytes",
                             [](LockedTracker& t) { return t.tracker.memory_bytes(); })
      .def(
          "observe",
          [](LockedTracker& t, const py::array_t<uint64_t, py::array::c_style>& keys, bool emit) {
            if (keys.ndim() != 1) fail(ErrorKind::kInvalidArgument, "keys must be a 1-D array");
            const uint64_t* k = keys.data();
            const auto n = static_cast<std::size_t>(keys.shape(0));
            std::vector<uint32_t> req;
            std::vector<uint64_t> cands;
            std::vector<float> feats;
            {
              py::gil_scoped_release nogil;
              std::lock_guard<std::mutex> g(t.mu);
              for (std::size_t i = 0; i < n; ++i) {
                const std::size_t before = cands.size();
                const std::size_t got = t.tracker.observe(k[i], emit, cands, feats);
                req.insert(req.end(), got, static_cast<uint32_t>(i));
                for (std::size_t r = before; r < cands.size(); ++r) {
                  feats[r * kNumFeatures + kLag] = static_cast<float>(n - 1 - i);
                }
              }
              dedupe_latest(req, cands, feats);
            }
            const auto rows = static_cast<py::ssize_t>(cands.size());
            py::array_t<uint32_t> req_out(rows);
            py::array_t<uint64_t> cand_out(rows);
            py::array_t<float> feat_out({rows, static_cast<py::ssize_t>(kNumFeatures)});
            std::copy(req.begin(), req.end(), req_out.mutable_data());
            std::copy(cands.begin(), cands.end(), cand_out.mutable_data());
            std::copy(feats.begin(), feats.end(), feat_out.mutable_data());
            return py::make_tuple(req_out, cand_out, feat_out);
          },
          py::arg("keys"), py::arg("emit") = true,
          "Record a batch of requests in order; return (request index, candidate, features) "
          "rows, one per distinct candidate (from the latest request that proposed it).")
      .def("reset", [](LockedTracker& t) {
        std::lock_guard<std::mutex> g(t.mu);
        t.tracker.reset();
      });
}

}  // namespace predis::bindings
