#pragma once
// INT8 builds under "prefer" precision constraints (TensorRT's default): an INT8 conv runs in FP16 where
// the tuner timed its FP16 form faster. The builder tunes the INT8 plan and a plan with every INT8 conv
// in FP16, takes the convs that are clearly faster in FP16 (quant::run_in_fp16), tunes that mixed plan
// and keeps it when its layers' times add up to less than the INT8 plan's (a conv moved to FP16 may
// need a quantize pass for an INT8 reader that the per-layer comparison cannot see).
#include <map>
#include <string>

#include "runtime/plan.h"

namespace kestrel::bld {

// A conv moves to FP16 only when its FP16 time is below this fraction of its INT8 time: layers in a
// near tie gain nothing, and a tie decided by timing noise would make two builds differ in precision.
inline constexpr double kFp16Faster = 0.9;

// The layers' tuned times added up (untimed layers, e.g. views, count 0).
double plan_time_ms(const rt::Plan& p);

// INT8 convs (kestrel.ConvInt8 layers of `int8_plan`) whose kestrel.Conv layer of the same name in
// `fp16_plan` took under kFp16Faster of their own time, as conv name -> the reason recorded on the
// layer. An INT8 conv's time includes the quantize pass that makes its input (or residual) codes when
// it is that pass's only reader: the pass goes away with it.
std::map<std::string, std::string> convs_faster_in_fp16(const rt::Plan& int8_plan, const rt::Plan& fp16_plan);

}  // namespace kestrel::bld
