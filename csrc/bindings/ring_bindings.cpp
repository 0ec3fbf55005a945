// predis._core.U64Ring: the access-log ring over uint64 items, exposed so that tests and
// benchmarks can drive producer and consumer from two real threads (both release the GIL).
#include <cstdint>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings/errors.hpp"
#include "bindings/register.hpp"
#include "predis/ring_buffer.hpp"

namespace py = pybind11;

namespace predis::bindings {

void register_ring(py::module_& m) {
  using Ring = SpscRing<uint64_t>;
  static_assert(SpscRingLayout<uint64_t>::check(), "ring indices must not share blocks");
  py::class_<Ring>(m, "U64Ring", "Single-producer/single-consumer ring of uint64 items.")
      .def(py::init([](std::size_t capacity) {
             if (capacity == 0) fail(ErrorKind::kInvalidArgument, "ring capacity must be positive");
             return std::make_unique<Ring>(capacity);
           }),
           py::arg("capacity"))
      .def_property_readonly("capacity", &Ring::capacity)
      .def("__len__", &Ring::size_approx)
      .def(
          "push_batch",
          [](Ring& r, const py::array_t<uint64_t, py::array::c_style>& items) {
            if (items.ndim() != 1) fail(ErrorKind::kInvalidArgument, "items must be 1-D");
            const uint64_t* data = items.data();
            const auto n = static_cast<std::size_t>(items.shape(0));
            py::gil_scoped_release nogil;
            return r.try_push_batch(data, n);
          },
          py::arg("items"), "Push the longest prefix that fits; return its length. Producer only.")
      .def(
          "pop_batch",
          [](Ring& r, std::size_t max) {
            if (max > r.capacity()) max = r.capacity();  // never allocate more than can pop
            py::array_t<uint64_t> out(static_cast<py::ssize_t>(max));
            uint64_t* data = out.mutable_data();
            std::size_t n = 0;
            {
              py::gil_scoped_release nogil;
              n = r.pop_batch(data, max);
            }
            out.resize({static_cast<py::ssize_t>(n)});
            return out;
          },
          py::arg("max"), "Pop up to max items. Consumer only.");
}

}  // namespace predis::bindings
