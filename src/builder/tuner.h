#pragma once
#include <string>
#include <vector>

#include "builder/build_plan.h"

namespace kestrel::bld {

struct TuneOptions {
  int64_t workspace_limit = 1ll << 30;
  std::string cache_path;
  std::string device_key;
  bool verbose = false;
  bool reference_only = false;  // every layer's reference tactic, not timed against others, not cached
  bool obey_precision = false;  // no tactic that leaves out a quantization (Layer::skips_quantization)
};

struct TuneStats {
  int tuned = 0, cached = 0, rejected = 0, over_workspace = 0;
  std::vector<std::string> notes;
};

// Chooses every live layer's tactic (sets tactic, time_ms, scratch_bytes). The plan's tensors must
// have final strides (resolve_layout) and its weights assembled. Needs the current CUDA device.
TuneStats tune(BuildPlan& p, const TuneOptions& o);

}  // namespace kestrel::bld
