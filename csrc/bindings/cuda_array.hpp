// Device arrays from Python: any object exposing __cuda_array_interface__ (CuPy, PyTorch,
// Numba, pycuda GPUArray). Read per the interface's version 3: shape, typestr, data
// (pointer, read-only flag), strides (None or C-contiguous), mask (must be None), stream
// (absent/None: nothing to wait for; 1 legacy default; 2 per-thread default; else a
// cudaStream_t; 0 is disallowed by the spec). Nothing here touches the device: validation
// happens before any table work, so bad input leaves the cache unchanged.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <pybind11/pybind11.h>

#include "bindings/errors.hpp"

namespace predis::bindings {

struct CudaArray {
  uintptr_t ptr = 0;
  std::vector<int64_t> shape;
  bool readonly = false;
  uintptr_t stream = 0;  // 0: no stream given

  std::size_t rows() const { return shape.empty() ? 0 : static_cast<std::size_t>(shape[0]); }
  std::size_t width() const { return shape.size() < 2 ? 1 : static_cast<std::size_t>(shape[1]); }
};

// True when obj has the attribute, or when reading it raised something other than
// AttributeError (parse_cuda_array then reports that error instead of a misleading one).
inline bool has_cuda_array_interface(const pybind11::handle& obj) {
  PyObject* v = PyObject_GetAttrString(obj.ptr(), "__cuda_array_interface__");
  if (v != nullptr) {
    Py_DECREF(v);
    return true;
  }
  const bool missing = PyErr_ExceptionMatches(PyExc_AttributeError) != 0;
  PyErr_Clear();
  return !missing;
}

// The device array behind obj, checked to be `ndim`-D, C-contiguous, of element type
// `want` ("u8" for keys, "u1" for byte rows) and, with `writable`, not read-only.
// Throws InvalidArgumentError naming `what` and the fix otherwise.
inline CudaArray parse_cuda_array(const pybind11::handle& obj, const char* what, int ndim,
                                  const char* want, bool writable) {
  namespace py = pybind11;
  const std::string name(what);
  auto bad = [&](const std::string& why) { fail(ErrorKind::kInvalidArgument, name + ": " + why); };
  py::object iface;
  try {
    iface = obj.attr("__cuda_array_interface__");
  } catch (py::error_already_set& e) {
    bad(std::string("reading __cuda_array_interface__ failed: ") + e.what());
  }
  if (!py::isinstance<py::dict>(iface)) bad("__cuda_array_interface__ must be a dict");
  auto d = py::reinterpret_borrow<py::dict>(iface);
  for (const char* field : {"shape", "typestr", "data", "version"}) {
    if (!d.contains(field))
      bad(std::string("__cuda_array_interface__ lacks the required '") + field + "' entry");
  }
  CudaArray a;
  try {
    const auto version = d["version"].cast<long long>();
    if (version < 0 || version > 3)
      bad("__cuda_array_interface__ version " + std::to_string(version) +
          " is not supported (0 to 3 are)");
    auto shape = d["shape"].cast<py::tuple>();
    for (const auto& extent : shape) {
      const auto e = extent.cast<long long>();
      if (e < 0) bad("shape has a negative extent");
      a.shape.push_back(e);
    }
    const auto typestr = d["typestr"].cast<std::string>();
    const std::string native_want = std::string("<") + want;
    const std::string any_order = std::string("|") + want;
    if (typestr != native_want && typestr != any_order && typestr != std::string("=") + want) {
      bad(std::string("dtype must be ") + (want[1] == '8' ? "uint64" : "uint8") + " ('" +
          native_want + "'), got typestr '" + typestr + "'" +
          (want[1] == '8' ? "; convert with keys.astype('uint64') (int64 keys: check they "
                            "are non-negative, then keys.view('uint64'))"
                          : "; convert with .view('uint8') or .astype('uint8')"));
    }
    auto data = d["data"].cast<py::tuple>();
    if (data.size() != 2) bad("'data' must be a (pointer, read_only) tuple");
    a.ptr = data[0].cast<uintptr_t>();
    a.readonly = data[1].cast<bool>();
    if (d.contains("mask") && !d["mask"].is_none()) bad("masked device arrays are not supported");
    if (d.contains("stream") && !d["stream"].is_none()) {
      a.stream = d["stream"].cast<uintptr_t>();
      if (a.stream == 0) bad("stream 0 is disallowed by __cuda_array_interface__ (v3)");
    }
    if (static_cast<int>(a.shape.size()) != ndim) {
      bad("must be " + std::to_string(ndim) + "-D, got " + std::to_string(a.shape.size()) + "-D");
    }
    const int64_t item = want[1] == '8' ? 8 : 1;
    if (d.contains("strides") && !d["strides"].is_none()) {
      auto strides = d["strides"].cast<py::tuple>();
      if (strides.size() != a.shape.size()) bad("'strides' does not match 'shape'");
      int64_t expect = item;
      for (std::size_t i = a.shape.size(); i-- > 0;) {
        const auto st = strides[i].cast<long long>();
        if (a.shape[i] > 1 && st != expect) {
          bad("must be C-contiguous (got strides that are not); copy it with "
              "cupy.ascontiguousarray() or .contiguous() first");
        }
        expect *= a.shape[i];
      }
    }
  } catch (py::cast_error&) {
    bad("__cuda_array_interface__ has an entry of the wrong type");
  }
  std::size_t count = 1;
  for (const int64_t e : a.shape) count *= static_cast<std::size_t>(e);
  if (a.ptr == 0 && count != 0) bad("data pointer is null");
  if (writable && a.readonly) bad("is read-only; pass a writable device array");
  return a;
}

}  // namespace predis::bindings
