// predis._core.DemandTap: the demand gets a cache's drains hand out, kept for one consumer
// (predis/demand_tap.hpp). The MLOps router takes them in chunks on its own thread.
#include <algorithm>
#include <cstdint>
#include <memory>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings/errors.hpp"
#include "bindings/register.hpp"
#include "bindings/without_gil.hpp"
#include "predis/demand_tap.hpp"

namespace py = pybind11;

namespace predis::bindings {

namespace {

// Up to `max_count` kept requests, moved out (take) or copied (peek) by `move`, as (uint64
// keys, bool hits). The caller serialises the consumer's calls, so what there is to move can
// only grow until this one.
template <typename Move>
py::tuple out_arrays(std::uint64_t available, std::uint64_t max_count, Move move) {
  const auto n = static_cast<py::ssize_t>(std::min<std::uint64_t>(available, max_count));
  py::array_t<std::uint64_t> keys(n);
  py::array_t<bool> hits(n);
  auto* k = keys.mutable_data();
  auto* h = reinterpret_cast<std::uint8_t*>(hits.mutable_data());
  const std::size_t got = without_gil([&] { return move(k, h, static_cast<std::size_t>(n)); });
  if (static_cast<py::ssize_t>(got) != n)
    fail(ErrorKind::kInvalidArgument, "a DemandTap's take() and peek() calls must not overlap");
  return py::make_tuple(keys, hits);
}

}  // namespace

void register_tap(py::module_& m) {
  py::class_<DemandTap, std::shared_ptr<DemandTap>>(
      m, "DemandTap",
      "The int keys and hit bits of the demand gets that the drains of the caches it is "
      "attached to (CoreCache.attach_demand_tap) hand out, kept in order for one consumer; "
      "past `capacity` kept requests, new ones are dropped and counted.")
      .def(py::init([](std::uint64_t capacity) {
             if (capacity < 1 || capacity > (std::uint64_t{1} << 30))
               fail(ErrorKind::kInvalidArgument, "capacity must be in [1, 2**30]");
             return std::make_shared<DemandTap>(static_cast<std::size_t>(capacity));
           }),
           py::arg("capacity"))
      .def(
          "wait",
          [](DemandTap& tap, std::uint64_t min_count, double max_wait_s) {
            if (!(max_wait_s >= 0.0 && max_wait_s <= 3600.0))
              fail(ErrorKind::kInvalidArgument, "max_wait_s must be in [0, 3600]");
            return without_gil(
                [&] { return tap.wait(static_cast<std::size_t>(min_count), max_wait_s); });
          },
          py::arg("min_count"), py::arg("max_wait_s"),
          "Wait (the GIL released) until `min_count` requests not peeked at are kept, the "
          "oldest kept has waited `max_wait_s`, or the tap is closed; returns how many are "
          "kept, peeked at or not. One waiter at a time.")
      .def(
          "take",
          [](DemandTap& tap, std::uint64_t max_count) {
            return out_arrays(tap.pending(), max_count,
                              [&](std::uint64_t* k, std::uint8_t* h, std::size_t n) {
                                return tap.take(k, h, n);
                              });
          },
          py::arg("max_count"),
          "Take up to `max_count` kept requests, oldest first, without waiting: (uint64 keys, "
          "bool hits). Calls must not overlap.")
      .def(
          "peek",
          [](DemandTap& tap, std::uint64_t max_count) {
            return out_arrays(tap.pending() - tap.peeked(), max_count,
                              [&](std::uint64_t* k, std::uint8_t* h, std::size_t n) {
                                return tap.peek(k, h, n);
                              });
          },
          py::arg("max_count"),
          "Copy up to `max_count` kept requests not peeked at before, oldest first, and leave "
          "them kept (take() moves them out later): (uint64 keys, bool hits). wait() counts "
          "only the requests not peeked at. Calls must not overlap with each other or take().")
      .def("nudge", &DemandTap::nudge,
           "End the waiter's current wait (or its next one) early: it returns what is kept, "
           "so that it can wait again for another count.")
      .def("close", &DemandTap::close,
           "Wake a waiting take(); later drains offer nothing. Kept requests can still be "
           "taken.")
      .def_property_readonly("closed", &DemandTap::closed)
      .def_property_readonly("capacity", &DemandTap::capacity)
      .def_property_readonly("seen", &DemandTap::seen,
                             "Demand gets of int keys offered so far, kept or dropped.")
      .def_property_readonly("taken", &DemandTap::taken)
      .def_property_readonly("pending", &DemandTap::pending)
      .def_property_readonly("dropped", &DemandTap::dropped)
      .def_property_readonly("peeked", &DemandTap::peeked,
                             "Kept requests already peeked at (the oldest kept ones).");
}

}  // namespace predis::bindings
