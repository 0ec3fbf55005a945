// predis._core.shuffle_events: segment format 2's column filter (predis/event_shuffle.hpp)
// over several arrays of access events at once, with the GIL released, so the collector
// neither joins its drained batches nor holds the interpreter while a segment is encoded.
#include <cstdint>
#include <tuple>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/errors.hpp"
#include "bindings/register.hpp"
#include "bindings/without_gil.hpp"
#include "predis/event_shuffle.hpp"

namespace py = pybind11;

namespace predis::bindings {

void register_segment(py::module_& m) {
  m.def(
      "shuffle_events",
      [](const py::list& parts, const py::array& out) {
        // Exactly EVENT_DTYPE: another 24-byte layout (fields reordered, big-endian) would
        // be shuffled as if it were one.
        const py::object expected = py::module_::import("predis.access_log").attr("EVENT_DTYPE");
        // The arrays stay referenced by `held` while the GIL is released.
        std::vector<py::array> held;
        std::vector<EventSpan> spans;
        held.reserve(parts.size());
        spans.reserve(parts.size());
        std::size_t total = 0;
        for (const py::handle& item : parts) {
          if (!py::isinstance<py::array>(item))
            fail(ErrorKind::kInvalidArgument, "parts must be numpy arrays of access events");
          auto a = py::reinterpret_borrow<py::array>(item);
          const int same = PyObject_RichCompareBool(a.dtype().ptr(), expected.ptr(), Py_EQ);
          if (same < 0) throw py::error_already_set();
          if (a.ndim() != 1 || same != 1 ||
              a.itemsize() != static_cast<py::ssize_t>(sizeof(AccessEvent)) ||
              !(a.flags() & py::array::c_style))
            fail(ErrorKind::kInvalidArgument,
                 "each part must be a C-contiguous 1-D array of predis.EVENT_DTYPE "
                 "(24-byte access events)");
          const auto n = static_cast<std::size_t>(a.shape(0));
          spans.push_back({static_cast<const uint8_t*>(a.data()), n});
          total += n;
          held.push_back(std::move(a));
        }
        if (out.ndim() != 1 || out.itemsize() != 1 || !(out.flags() & py::array::c_style) ||
            !out.writeable() ||
            static_cast<std::size_t>(out.shape(0)) != total * sizeof(AccessEvent))
          fail(ErrorKind::kInvalidArgument,
               "out must be a writeable, C-contiguous 1-D byte array of 24 bytes per event");
        auto* dst = static_cast<uint8_t*>(py::array(out).mutable_data());
        for (const EventSpan& span : spans) {  // reads and writes must not overlap
          const uint8_t* end = span.data + span.size * sizeof(AccessEvent);
          if (span.size && span.data < dst + total * sizeof(AccessEvent) && dst < end)
            fail(ErrorKind::kInvalidArgument, "out must not overlap the events");
        }
        const TimeRange range =
            without_gil([&] { return shuffle_events(spans.data(), spans.size(), dst); });
        return std::make_tuple(range.min, range.max);
      },
      py::arg("parts"), py::arg("out"),
      "Write the events of ``parts`` (arrays of EVENT_DTYPE, read as one sequence) to ``out`` "
      "in segment format 2's layout: columns in field order, timestamps delta-coded, each "
      "column byte-shuffled. Returns the timestamps' (min, max), (0, 0) for no events.");
}

}  // namespace predis::bindings
