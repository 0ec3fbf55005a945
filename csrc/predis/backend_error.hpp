// Failures of a backend's device or of its creation, as C++ exceptions. The bindings turn
// them into predis.BackendUnavailable, predis.OutOfMemoryError and predis.DeviceError.
#pragma once

#include <stdexcept>
#include <string>

namespace predis {

class BackendError : public std::runtime_error {
 public:
  enum class Kind {
    kUnavailable,  // the backend cannot be used here: no driver, no device, not built
    kOutOfMemory,  // the device ran out of memory
    kFailure,      // a device call failed
  };
  BackendError(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_;
};

}  // namespace predis
