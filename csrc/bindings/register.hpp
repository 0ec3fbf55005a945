#pragma once

#include <pybind11/pybind11.h>

namespace predis::bindings {

void register_build_info(pybind11::module_& m);
void register_ring(pybind11::module_& m);
void register_cache(pybind11::module_& m);
void register_prefetch(pybind11::module_& m);
void register_split(pybind11::module_& m);
void register_adwin(pybind11::module_& m);
void register_segment(pybind11::module_& m);
void register_tap(pybind11::module_& m);
void register_msprt(pybind11::module_& m);

}  // namespace predis::bindings
