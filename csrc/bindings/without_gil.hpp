// Runs work with the GIL released, in a function that is never inlined: a profile can then
// tell the work that other Python threads do not wait for (the inclusive cost of the
// without_gil instances) from the rest. bench/callgrind/loop_overhead.py reads it so.
#pragma once

#include <utility>

#include <pybind11/pybind11.h>

namespace predis::bindings {

template <class Work>
[[gnu::noinline]] decltype(auto) without_gil(Work&& work) {
  pybind11::gil_scoped_release nogil;
  return std::forward<Work>(work)();
}

}  // namespace predis::bindings
