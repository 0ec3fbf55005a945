// predis._core.Adwin: ADWIN over 0/1 values in blocks (predis/adwin.hpp), fed whole arrays
// with the GIL released (predis.mlops.drift.StreamDriftDetector uses it). After a
// detection the window starts afresh.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/errors.hpp"
#include "bindings/register.hpp"
#include "bindings/without_gil.hpp"
#include "predis/adwin.hpp"

namespace py = pybind11;

namespace predis::bindings {
namespace {

// An Adwin fed bit by bit in blocks of `block`: the partial block is carried between calls.
// A mutex serialises updates (run with the GIL released) and the readers that a monitoring
// thread calls meanwhile; it is uncontended in the loop (one lock per chunk of bits).
class BlockAdwin {
 public:
  BlockAdwin(double delta, std::uint32_t block, std::uint32_t clock, std::uint32_t max_buckets,
             double min_side, double grace)
      : adwin_(delta, clock, max_buckets, min_side, grace), block_(block) {}

  // (bits of this call consumed when the window was cut, mean and width after the cut).
  using Cut = std::tuple<std::uint64_t, double, double>;

  std::vector<Cut> update(const std::uint8_t* bits, std::size_t n) {
    const std::lock_guard<std::mutex> hold(mutex_);
    std::vector<Cut> cuts;
    std::size_t i = 0;
    while (i < n) {
      const std::size_t take = std::min<std::size_t>(block_ - carry_n_, n - i);
      std::uint64_t ones = 0;
      for (std::size_t j = 0; j < take; ++j) ones += bits[i + j] != 0;
      carry_ones_ += ones;
      carry_n_ += static_cast<std::uint32_t>(take);
      i += take;
      if (carry_n_ < block_) break;
      const bool cut = adwin_.add_bits(carry_ones_, block_);
      carry_ones_ = 0;
      carry_n_ = 0;
      if (cut) {
        // One detection per change: the window restarts on the new regime, as river's
        // ADWIN does, instead of shrinking further at each of the next few tests.
        cuts.emplace_back(i, adwin_.mean(), adwin_.width());
        adwin_.clear();
      }
    }
    return cuts;
  }

  double mean() const {
    const std::lock_guard<std::mutex> hold(mutex_);
    return adwin_.mean();
  }
  double width() const {
    const std::lock_guard<std::mutex> hold(mutex_);
    return adwin_.width();
  }
  double variance() const {
    const std::lock_guard<std::mutex> hold(mutex_);
    return adwin_.variance();
  }
  std::size_t buckets() const {
    const std::lock_guard<std::mutex> hold(mutex_);
    return adwin_.buckets();
  }
  std::uint32_t block() const { return block_; }
  std::uint32_t carried() const {
    const std::lock_guard<std::mutex> hold(mutex_);
    return carry_n_;
  }

 private:
  mutable std::mutex mutex_;
  Adwin adwin_;
  std::uint32_t block_;
  std::uint64_t carry_ones_ = 0;
  std::uint32_t carry_n_ = 0;
};

}  // namespace

void register_adwin(py::module_& m) {
  py::class_<BlockAdwin>(m, "Adwin",
                         "ADWIN (Bifet and Gavalda 2007) over 0/1 values, inserted in blocks "
                         "of `block` values with their exact counts and variance.")
      .def(py::init([](double delta, std::uint32_t block, std::uint32_t clock,
                       std::uint32_t max_buckets, double min_side, double grace) {
             if (!(delta > 0.0 && delta < 1.0))
               fail(ErrorKind::kInvalidArgument, "delta must be in (0, 1)");
             if (block < 1 || block > 4096)
               fail(ErrorKind::kInvalidArgument, "block must be in [1, 4096]");
             if (clock < 1 || clock > 4096)
               fail(ErrorKind::kInvalidArgument, "clock must be in [1, 4096]");
             if (max_buckets < 2 || max_buckets > 64)
               fail(ErrorKind::kInvalidArgument, "max_buckets must be in [2, 64]");
             if (!(min_side >= 1.0) || !(grace >= 0.0))
               fail(ErrorKind::kInvalidArgument, "min_side must be >= 1 and grace >= 0");
             return std::make_unique<BlockAdwin>(delta, block, clock, max_buckets, min_side, grace);
           }),
           py::arg("delta"), py::arg("block"), py::arg("clock") = 32, py::arg("max_buckets") = 5,
           py::arg("min_side") = 5.0, py::arg("grace") = 10.0)
      .def(
          "update",
          [](BlockAdwin& a, const py::array_t<std::uint8_t, py::array::c_style>& bits) {
            if (bits.ndim() != 1) fail(ErrorKind::kInvalidArgument, "bits must be 1-D");
            const auto* data = bits.data();
            const auto n = static_cast<std::size_t>(bits.shape(0));
            return without_gil([&] { return a.update(data, n); });
          },
          py::arg("bits"),
          "Feed 0/1 values (uint8, nonzero = 1); returns the cuts: (values of this call "
          "consumed at the cut, mean after it, width after it).")
      .def(
          "update_bit",
          [](BlockAdwin& a, bool bit) -> py::object {
            const std::uint8_t value = bit ? 1 : 0;
            const auto cuts = a.update(&value, 1);
            if (cuts.empty()) return py::none();
            return py::cast(cuts.front());
          },
          py::arg("bit"), "Feed one 0/1 value; the cut it caused as update() reports it, or None.")
      .def_property_readonly("mean", &BlockAdwin::mean)
      .def_property_readonly("width", &BlockAdwin::width)
      .def_property_readonly("variance", &BlockAdwin::variance)
      .def_property_readonly("buckets", &BlockAdwin::buckets)
      .def_property_readonly("block", &BlockAdwin::block)
      .def_property_readonly("carried", &BlockAdwin::carried);
}

}  // namespace predis::bindings
