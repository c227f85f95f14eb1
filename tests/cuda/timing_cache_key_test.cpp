// The timing cache key names what its times were measured with: the device, the tuner's way of timing,
// and the build of the CUDA kernels (a kernel rebuilt under the same tactic name is timed again).
#include <gtest/gtest.h>

#include "backend/cuda/layer.h"
#include "builder/tuner.h"
#include "util/build_id.h"

namespace {
using namespace kestrel;

TEST(TimingCacheKey, NamesTheDeviceTheTimingAndTheKernelsBuild) {
  rt::DeviceInfo d;
  d.name = "NVIDIA H100 80GB HBM3", d.cc_major = 9, d.cc_minor = 0;
  d.cuda_runtime_version = 13000, d.cudnn_version = 91900;
  const std::string key = bld::timing_cache_key(d);
  EXPECT_EQ(key.rfind(rt::device_key(d), 0), 0u) << key;
  EXPECT_NE(key.find("|timed:graph-replay"), std::string::npos) << key;
  const std::string kernels = util::module_build_id(reinterpret_cast<const void*>(&cuda::create_layer));
  ASSERT_FALSE(kernels.empty()) << "the kernels' module carries no build ID";
  EXPECT_NE(key.find("|kernels:" + kernels), std::string::npos) << key;
  // The kernels live in the runtime library, not in this test binary.
  EXPECT_NE(kernels, util::module_build_id(reinterpret_cast<const void*>(&bld::timing_cache_key)));
}

}  // namespace
