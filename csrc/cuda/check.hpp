// Every CUDA runtime call is checked; a failure becomes a predis::BackendError naming the
// call, so nothing fails silently and Python sees a predis error with the CUDA reason.
#pragma once

#include <string>

#include <cuda_runtime.h>

#include "predis/backend_error.hpp"

namespace predis::cuda {

inline void check(cudaError_t rc, const char* what) {
  if (rc == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so later calls start clean
  const std::string msg = std::string("CUDA error while ") + what + ": " + cudaGetErrorString(rc) +
                          " (" + cudaGetErrorName(rc) + ")";
  throw BackendError(rc == cudaErrorMemoryAllocation ? BackendError::Kind::kOutOfMemory
                                                     : BackendError::Kind::kFailure,
                     msg);
}

}  // namespace predis::cuda
