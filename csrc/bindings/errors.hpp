// C++ errors that reach Python as the predis.errors classes.
#pragma once

#include <stdexcept>
#include <string>

#include <pybind11/pybind11.h>

namespace predis::bindings {

enum class ErrorKind { kInvalidKey, kInvalidValue, kValueTooLarge, kInvalidArgument };

class PredisException : public std::runtime_error {
 public:
  PredisException(ErrorKind kind, const std::string& what)
      : std::runtime_error(what), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

[[noreturn]] inline void fail(ErrorKind kind, const std::string& what) {
  throw PredisException(kind, what);
}

void register_errors(pybind11::module_& m);

}  // namespace predis::bindings
