#include "bindings/errors.hpp"

#include <new>
#include <string>

#include "predis/backend_error.hpp"

namespace py = pybind11;

namespace predis::bindings {
namespace {

const char* class_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidKey:
      return "InvalidKeyError";
    case ErrorKind::kInvalidValue:
      return "InvalidValueError";
    case ErrorKind::kValueTooLarge:
      return "ValueTooLargeError";
    case ErrorKind::kInvalidArgument:
      return "InvalidArgumentError";
  }
  return "PredisError";
}

void set_error(const char* name, const char* what) {
  // Looked up per raise: errors are the slow path, and no Python object outlives the module.
  py::object cls = py::module_::import("predis.errors").attr(name);
  PyErr_SetString(cls.ptr(), what);
}

}  // namespace

void register_errors(py::module_& /*m*/) {
  // Module-local: tried before any global translator, so another pybind11 extension in the
  // process (libcachesim registers one for std::runtime_error) cannot turn ours into
  // RuntimeError.
  py::register_local_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const PredisException& e) {
      set_error(class_name(e.kind()), e.what());
    } catch (const BackendError& e) {
      switch (e.kind()) {
        case BackendError::Kind::kUnavailable:
          set_error("BackendUnavailable", e.what());
          break;
        case BackendError::Kind::kOutOfMemory:
          set_error(
              "OutOfMemoryError",
              (std::string(e.what()) + "; lower capacity_bytes or free device memory").c_str());
          break;
        case BackendError::Kind::kFailure:
          set_error("DeviceError", e.what());
          break;
      }
    } catch (const std::bad_alloc&) {
      set_error("OutOfMemoryError",
                "out of host memory while storing into the cache; lower capacity_bytes or "
                "free memory");
    }
  });
}

}  // namespace predis::bindings
