// The per-layer comparison behind the builder's precision choice by time (precision_by_time.h).
#include "builder/precision_by_time.h"

#include <cstdio>
#include <vector>

#include "builder/build_plan.h"
#include "builder/timing_cache.h"

namespace kestrel::bld {

double plan_time_ms(const rt::Plan& p) {
  double t = 0;
  for (const rt::PlanLayer& l : p.layers) t += l.time_ms;
  return t;
}

std::map<std::string, std::string> convs_faster_in_fp16(const rt::Plan& int8_plan, const rt::Plan& fp16_plan) {
  std::map<std::string, double> fp16_time;
  for (const rt::PlanLayer& l : fp16_plan.layers)
    if (is_fp16_conv_op(l.op)) fp16_time[l.name] = l.time_ms;
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
    if (!is_int8_conv_op(l.op)) continue;
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

namespace {
// One line of the timing cache: its fields are tab-separated, so the choice is stored as the note, then
// each conv and its reason, separated by the ASCII unit and record separators.
constexpr char kUnit = '\x1f', kRecord = '\x1e';
constexpr const char* kChoicePrefix = "precision-choice|";
bool storable(const std::string& s) { return s.find_first_of(std::string("\t\n\r") + kUnit + kRecord) == std::string::npos; }
}  // namespace

void save_precision_choice(const std::string& cache_path, const std::string& device_key, const std::string& signature,
                           const PrecisionChoice& choice) {
  if (cache_path.empty() || !storable(signature) || !storable(choice.note)) return;
  std::string v = choice.note;
  for (const auto& [conv, why] : choice.fp16) {
    if (!storable(conv) || !storable(why)) return;  // a name the line cannot hold: not cached, measured each time
    v += kRecord + conv + kUnit + why;
  }
  TimingCache cache;
  cache.load(cache_path);
  cache.put(device_key, kChoicePrefix + signature, {v, 0.f});  // a choice, not a timing
  cache.save(cache_path);
}

std::optional<PrecisionChoice> load_precision_choice(const std::string& cache_path, const std::string& device_key,
                                                     const std::string& signature,
                                                     const std::map<std::string, std::string>& int8_convs) {
  if (cache_path.empty()) return std::nullopt;
  TimingCache cache;
  cache.load(cache_path);
  const auto e = cache.get(device_key, kChoicePrefix + signature);
  if (!e) return std::nullopt;
  PrecisionChoice c;
  size_t at = e->tactic.find(kRecord);
  c.note = e->tactic.substr(0, at);
  while (at != std::string::npos) {
    const size_t next = e->tactic.find(kRecord, at + 1);
    const std::string rec = e->tactic.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
    const size_t u = rec.find(kUnit);
    if (u == std::string::npos || !int8_convs.count(rec.substr(0, u))) return std::nullopt;
    c.fp16[rec.substr(0, u)] = rec.substr(u + 1);
    at = next;
  }
  return c;
}

}  // namespace kestrel::bld
