// The per-layer comparison behind the builder's precision choice by time (precision_by_time.h).
#include "builder/precision_by_time.h"

#include <cstdio>
#include <vector>

namespace kestrel::bld {

double plan_time_ms(const rt::Plan& p) {
  double t = 0;
  for (const rt::PlanLayer& l : p.layers) t += l.time_ms;
  return t;
}

std::map<std::string, std::string> convs_faster_in_fp16(const rt::Plan& int8_plan, const rt::Plan& fp16_plan) {
  std::map<std::string, double> fp16_time;
  for (const rt::PlanLayer& l : fp16_plan.layers)
    if (l.op == "kestrel.Conv") fp16_time[l.name] = l.time_ms;
  // Each tensor's producing layer and number of readers.
  std::vector<int> producer(int8_plan.tensors.size(), -1), readers(int8_plan.tensors.size(), 0);
  for (size_t i = 0; i < int8_plan.layers.size(); ++i) {
    for (int32_t t : int8_plan.layers[i].outputs)
      if (t >= 0) producer[t] = static_cast<int>(i);
    for (int32_t t : int8_plan.layers[i].inputs)
      if (t >= 0) ++readers[t];
  }
  const int batch = static_cast<int>(int8_plan.header.batch);
  std::map<std::string, std::string> out;
  for (const rt::PlanLayer& l : int8_plan.layers) {
    if (l.op != "kestrel.ConvInt8") continue;
    auto f = fp16_time.find(l.name);
    if (f == fp16_time.end() || l.time_ms <= 0 || f->second <= 0) continue;
    double int8_ms = l.time_ms;
    for (int32_t t : l.inputs)
      if (t >= 0 && producer[t] >= 0 && readers[t] == 1 && int8_plan.layers[producer[t]].op == "kestrel.QuantizeInt8")
        int8_ms += int8_plan.layers[producer[t]].time_ms;
    if (!(f->second < kFp16Faster * int8_ms)) continue;
    char reason[160];
    std::snprintf(reason, sizeof(reason), "measured at batch %d: FP16 %.4f ms, INT8 %.4f ms (with its quantize pass)", batch,
                  f->second, int8_ms);
    out[l.name] = reason;
  }
  return out;
}

}  // namespace kestrel::bld
