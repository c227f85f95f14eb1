#include "runtime/device.h"

#include <cuda_runtime.h>
#include <cudnn.h>

#include "backend/cuda/check.h"
#include "kestrel/version.h"

namespace kestrel::rt {

DeviceInfo query_device(int device) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0)
    fail("no CUDA GPU is available (", e == cudaSuccess ? "0 devices" : cudaGetErrorString(e), ")");
  if (device < 0 || device >= count) fail("CUDA device ", device, " does not exist (", count, " available)");
  cudaDeviceProp p{};
  KCUDA(cudaGetDeviceProperties(&p, device));
  DeviceInfo d;
  d.name = p.name;
  d.cc_major = p.major;
  d.cc_minor = p.minor;
  d.multiprocessors = p.multiProcessorCount;
  KCUDA(cudaRuntimeGetVersion(&d.cuda_runtime_version));
  d.cudnn_version = static_cast<int>(cudnnGetVersion());
  return d;
}

std::string device_key(const DeviceInfo& d) {
  return d.name + "|sm" + std::to_string(d.cc_major) + std::to_string(d.cc_minor) + "|cuda" +
         std::to_string(d.cuda_runtime_version) + "|cudnn" + std::to_string(d.cudnn_version) + "|kestrel" +
         KESTREL_VERSION_STRING;
}

}  // namespace kestrel::rt
