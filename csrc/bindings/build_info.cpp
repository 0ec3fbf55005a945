// predis._core.build_info(): what this extension was compiled with, and cuda_devices().
#include <string>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/register.hpp"
#include "predis/bench_slowdown.hpp"
#include "predis/bucket.hpp"
#include "predis/platform.hpp"

#ifdef PREDIS_WITH_CUDA
#include "cuda/device_info.hpp"
#endif

namespace py = pybind11;

namespace predis::bindings {

void register_build_info(py::module_& m) {
  m.def(
      "build_info",
      [] {
        py::dict d;
        d["version"] = PREDIS_VERSION;
        d["compiler"] = PREDIS_COMPILER;
        d["cxx_standard"] = static_cast<long>(__cplusplus);
#ifdef PREDIS_WITH_CUDA
        d["backends"] = py::make_tuple("cpu", "cuda");
        d["cuda"] = true;
        d["cuda_version"] = PREDIS_CUDA_VERSION;
#else
        d["backends"] = py::make_tuple("cpu");
        d["cuda"] = false;
        d["cuda_version"] = py::none();
#endif
#ifdef PREDIS_SANITIZED
        d["sanitizers"] = py::make_tuple("address", "undefined");
#else
        d["sanitizers"] = py::tuple();
#endif
#ifdef NDEBUG
        d["debug"] = false;
#else
        d["debug"] = true;
#endif
        d["slots_per_bucket"] = kSlotsPerBucket;
        d["bucket_bytes"] = sizeof(Bucket);
        d["false_sharing_range"] = kFalseSharingRange;
        d["bench_slowdown"] = kBenchSlowdown;  // 0 in every real build
        return d;
      },
      "What this extension was compiled with.");

  m.def(
      "cuda_devices",
      [] {
        py::dict d;
        py::list devices;
#ifdef PREDIS_WITH_CUDA
        std::string error;
        for (const auto& dev : cuda::list_devices(&error)) {
          py::dict x;
          x["index"] = dev.index;
          x["name"] = dev.name;
          x["compute_capability"] = py::make_tuple(dev.major, dev.minor);
          x["total_memory"] = dev.total_memory;
          x["pci_bus_id"] = dev.pci_bus_id;
          devices.append(x);
        }
        d["error"] = error.empty() ? py::object(py::none()) : py::object(py::str(error));
        d["runtime_version"] = cuda::runtime_version();
#else
        d["error"] = "this build of predis was compiled without CUDA";
        d["runtime_version"] = py::none();
#endif
        d["devices"] = devices;
        return d;
      },
      "CUDA devices visible to this build, and why there are none when there are none.");
}

}  // namespace predis::bindings
