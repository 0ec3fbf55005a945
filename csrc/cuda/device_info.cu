#include <cuda_runtime.h>

#include "cuda/device_info.hpp"

namespace predis::cuda {

std::vector<DeviceInfo> list_devices(std::string* error) {
  std::vector<DeviceInfo> out;
  int count = 0;
  const cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess) {
    if (error != nullptr) *error = cudaGetErrorString(rc);
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return out;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    char bus[32] = {};
    if (cudaDeviceGetPCIBusId(bus, sizeof bus, i) != cudaSuccess) bus[0] = '\0';
    out.push_back(DeviceInfo{i, prop.name, prop.major, prop.minor,
                             static_cast<unsigned long long>(prop.totalGlobalMem), bus});
  }
  if (out.empty() && error != nullptr) *error = "the CUDA runtime reports no devices";
  return out;
}

int runtime_version() {
  int v = 0;
  cudaRuntimeGetVersion(&v);
  return v;
}

}  // namespace predis::cuda
