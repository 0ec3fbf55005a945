// What the CUDA runtime sees. Built only when CMake found nvcc (PREDIS_WITH_CUDA).
#pragma once

#include <string>
#include <vector>

namespace predis::cuda {

struct DeviceInfo {
  int index;
  std::string name;
  int major;
  int minor;
  unsigned long long total_memory;
  std::string pci_bus_id;  // as NVML's nvmlDeviceGetHandleByPciBusId takes it
};

// Devices the runtime can use. Empty, with `error` set, when there is no driver or device.
std::vector<DeviceInfo> list_devices(std::string* error);
int runtime_version();

}  // namespace predis::cuda
