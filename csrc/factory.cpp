// The one place that chooses a backend.
#include <stdexcept>

#include "cpu/cpu_table.hpp"
#include "predis/table.hpp"

namespace predis {

std::unique_ptr<Table> make_table(const std::string& backend, const TableConfig& config) {
  if (backend == "cpu") return std::make_unique<CpuTable>(config);
  throw std::invalid_argument("unknown backend '" + backend + "'; this build has: cpu");
}

}  // namespace predis
