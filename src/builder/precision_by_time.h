#pragma once
// INT8 builds under "prefer" precision constraints (TensorRT's default): an INT8 conv runs in FP16 where
// the tuner timed its FP16 form faster. The builder tunes the INT8 plan and a plan with every INT8 conv
// in FP16, takes the convs that are clearly faster in FP16 (quant::run_in_fp16), tunes that mixed plan
// and keeps it when its layers' times add up to less than the INT8 plan's (a conv moved to FP16 may
// need a quantize pass for an INT8 reader that the per-layer comparison cannot see).
#include <map>
#include <optional>
#include <string>

#include "runtime/plan.h"

namespace kestrel::bld {

// A conv moves to FP16 only when its FP16 time is below this fraction of its INT8 time: layers in a
// near tie gain nothing, and a tie decided by timing noise would make two builds differ in precision.
inline constexpr double kFp16Faster = 0.9;
// Names the comparison's rules in the cached choice's signature: a choice made under other rules (the
// stems once were not compared) is measured again, not reused.
inline constexpr const char* kPrecisionRules = "convs+stems";

// The layers' tuned times added up (untimed layers, e.g. views, count 0).
double plan_time_ms(const rt::Plan& p);

// INT8 convs (layers of `int8_plan` that is_int8_conv_op names, the stem included) whose conv layer of
// the same name in `fp16_plan` took under kFp16Faster of their own time, as conv name -> the reason
// recorded on the layer. An INT8 conv's time includes the quantize pass that makes its input (or
// residual) codes when it is that pass's only reader: the pass goes away with it.
std::map<std::string, std::string> convs_faster_in_fp16(const rt::Plan& int8_plan, const rt::Plan& fp16_plan);

// The choice of one build, kept in the timing cache file beside the layers' tactics, so that a rebuild of
// the same Q/DQ graph at the same batch on the same device and libraries tunes one plan instead of three.
// `signature` names what the choice depends on (the graph with its scales, its INT8 convs, the tactic
// options); the device key is the timing cache's own.
struct PrecisionChoice {
  std::map<std::string, std::string> fp16;  // INT8 convs that run in FP16 -> why (empty: all stay INT8)
  std::string note;                         // what the build that measured it reported
};
void save_precision_choice(const std::string& cache_path, const std::string& device_key, const std::string& signature,
                           const PrecisionChoice& choice);
// The cached choice, or nothing when there is none, it cannot be read, or it names a conv that is not one
// of `int8_convs` (the graph changed under the same signature: never trusted).
std::optional<PrecisionChoice> load_precision_choice(const std::string& cache_path, const std::string& device_key,
                                                     const std::string& signature,
                                                     const std::map<std::string, std::string>& int8_convs);

}  // namespace kestrel::bld
