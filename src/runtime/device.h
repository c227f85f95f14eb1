#pragma once
// The GPU an engine is built for or loaded on, and the library versions that go into the engine
// header and the timing-cache key.
#include <string>

namespace kestrel::rt {

struct DeviceInfo {
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int cuda_runtime_version = 0, cudnn_version = 0;
  int multiprocessors = 0;
};

// Throws kestrel::Error when there is no usable CUDA device `device`.
DeviceInfo query_device(int device);
// "NVIDIA H100 80GB HBM3|sm90|cuda13000|cudnn91900|kestrel0.1.0": the device part of the timing cache
// key (bld::timing_cache_key).
std::string device_key(const DeviceInfo& d);

}  // namespace kestrel::rt
