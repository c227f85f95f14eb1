#pragma once
#include <map>
#include <string>
#include <vector>

#include "builder/build_plan.h"
#include "runtime/device.h"

namespace kestrel::bld {

struct TuneOptions {
  int64_t workspace_limit = 1ll << 30;
  std::string cache_path;
  std::string device_key;
  bool verbose = false;
  bool reference_only = false;  // every layer's reference tactic, not timed against others, not cached
  bool obey_precision = false;  // no tactic that leaves out a quantization (Layer::skips_quantization)
  bool cudnn_tactics = true;     // BuilderConfig's tactic sources
  bool cublaslt_tactics = true;
  std::map<std::string, std::string> forced;  // layer name -> tactic it runs, unchecked and untimed (tests)
  std::string cudnn_plan_cache;  // folder of compiled cuDNN plans ("": the default, "off": none)
};

struct TuneStats {
  int tuned = 0, cached = 0, rejected = 0, over_workspace = 0;
  std::vector<std::string> notes;
  // Every live layer's candidate tactics, the reference first (what BuildReport::candidates shows).
  std::vector<std::pair<std::string, std::vector<std::string>>> candidates;
};

// The key of this device's timing cache entries (layer tactics and INT8 precision choices) as this code
// measures them: the device key, the tuner's way of timing, and the build ID of the module holding the
// CUDA kernels and their tactic lists. A kernel rebuilt with other code under the same tactic name is
// timed again instead of judged by its predecessor's time.
std::string timing_cache_key(const rt::DeviceInfo& dev);

// Chooses every live layer's tactic (sets tactic, time_ms, scratch_bytes). The plan's tensors must
// have final strides (resolve_layout) and its weights assembled. Needs the current CUDA device.
TuneStats tune(BuildPlan& p, const TuneOptions& o);

}  // namespace kestrel::bld
