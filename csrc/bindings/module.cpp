// predis._core: creates the module and registers each area.
#include <pybind11/pybind11.h>

#include "bindings/errors.hpp"
#include "bindings/register.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() =
      "Predis native core: the cache table, access-log ring, prefetch candidate tracker, the A/B "
      "split hash, the A/B test's statistics and build information.";
  predis::bindings::register_errors(m);
  predis::bindings::register_build_info(m);
  predis::bindings::register_ring(m);
  predis::bindings::register_tap(m);
  predis::bindings::register_cache(m);
  predis::bindings::register_prefetch(m);
  predis::bindings::register_split(m);
  predis::bindings::register_adwin(m);
  predis::bindings::register_msprt(m);
  predis::bindings::register_segment(m);
}
