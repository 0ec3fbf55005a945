// The one place that chooses a backend.
#include <stdexcept>

#include "cpu/cpu_table.hpp"
#include "predis/backend_error.hpp"
#include "predis/table.hpp"

#ifdef PREDIS_WITH_CUDA
#include "cuda/cuda_table.hpp"
#endif

namespace predis {

std::unique_ptr<Table> make_table(const std::string& backend, const TableConfig& config) {
  if (backend == "cpu") return std::make_unique<CpuTable>(config);
  if (backend == "cuda") {
#ifdef PREDIS_WITH_CUDA
    return cuda::make_cuda_table(config);
#else
    throw BackendError(BackendError::Kind::kUnavailable,
                       "this build of predis has no CUDA backend (it was built with "
                       "PREDIS_CUDA=OFF or without nvcc); reinstall it where nvcc is on PATH, "
                       "or use backend='cpu'");
#endif
  }
#ifdef PREDIS_WITH_CUDA
  throw std::invalid_argument("unknown backend '" + backend + "'; this build has: cpu, cuda");
#else
  throw std::invalid_argument("unknown backend '" + backend + "'; this build has: cpu");
#endif
}

}  // namespace predis
