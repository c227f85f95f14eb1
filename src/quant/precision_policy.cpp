// Which layers run in which precision before any measurement: the default policy and the user's
// --layer-precision rules. The policy keeps the detection head's output convs and the box decode in
// FP16: their outputs are the boxes and class logits themselves, where an INT8 step is a direct mAP
// loss, while they cost a few percent of the FLOPs.
#include <fnmatch.h>

#include <algorithm>
#include <map>
#include <set>

#include "quant/internal.h"

namespace kestrel::quant {

const char* precision_name(LayerPrecision p) {
  switch (p) {
    case LayerPrecision::Int8: return "int8";
    case LayerPrecision::FP16: return "fp16";
    case LayerPrecision::FP32: return "fp32";
  }
  return "?";
}

LayerPrecision parse_precision(const std::string& name) {
  if (name == "int8") return LayerPrecision::Int8;
  if (name == "fp16") return LayerPrecision::FP16;
  if (name == "fp32") return LayerPrecision::FP32;
  throw UsageError("unknown precision '" + name + "' (expected int8, fp16 or fp32)");
}

std::vector<LayerRule> parse_layer_rules(const std::string& spec) {
  std::vector<LayerRule> rules;
  size_t start = 0;
  while (start <= spec.size()) {
    const size_t comma = spec.find(',', start);
    const std::string item = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? spec.size() + 1 : comma + 1;
    if (item.empty()) continue;
    const size_t colon = item.rfind(':');
    if (colon == std::string::npos || colon == 0)
      throw UsageError("--layer-precision entry '" + item + "' is not PATTERN:int8|fp16|fp32");
    rules.push_back({item.substr(0, colon), parse_precision(item.substr(colon + 1))});
  }
  if (rules.empty()) throw UsageError("--layer-precision needs at least one PATTERN:precision");
  return rules;
}

namespace detail {

bool is_qdq(const Node& n) { return n.op == "QuantizeLinear" || n.op == "DequantizeLinear"; }

std::vector<std::string> head_output_convs(const Graph& g) {
  static const std::set<std::string> kMovement = {"Concat", "Reshape", "Transpose", "Split", "Slice", "Identity",
                                                  "Flatten", "Squeeze", "Unsqueeze"};
  const auto prod = g.producers();
  std::vector<std::string> convs;
  std::set<std::string> seen;
  std::vector<std::string> stack;
  for (const Node& n : g.nodes)
    if (n.op == "kestrel.DetectV8" || n.op == "kestrel.DetectV5") stack.insert(stack.end(), n.inputs.begin(), n.inputs.end());
  while (!stack.empty()) {
    const std::string v = stack.back();
    stack.pop_back();
    if (v.empty() || !seen.insert(v).second) continue;
    auto it = prod.find(v);
    if (it == prod.end()) continue;
    const Node& p = g.nodes[it->second];
    if (p.op == "kestrel.Conv") convs.push_back(p.name);
    else if (kMovement.count(p.op)) stack.insert(stack.end(), p.inputs.begin(), p.inputs.end());
  }
  return convs;
}

namespace {
// The stem and the conv after it (which read the image and the stride-2 tensor) stay INT8: keeping
// them in FP16 recovered less than the stride 4-8 convs did (bench/RESULTS.md), and they are the
// largest activations, where INT8 saves the most.
constexpr int64_t kMinInputStride = 4;
}  // namespace

std::vector<std::pair<std::string, int64_t>> high_resolution_convs(const Graph& g, int64_t max_stride) {
  std::vector<std::pair<std::string, int64_t>> convs;
  if (max_stride <= 0 || g.inputs.empty()) return convs;
  const Shape& in = g.value(g.inputs[0]).shape;
  if (in.size() != 4 || in[2] <= 0) return convs;
  for (const Node& n : g.nodes) {
    if (n.op != "kestrel.Conv" || n.outputs.empty()) continue;
    const Shape& out = g.value(n.outputs[0]).shape;
    if (out.size() != 4 || out[2] <= 0) continue;
    const int64_t stride = in[2] / out[2];
    if (stride > max_stride) return convs;  // the backbone has left the high resolutions: the rest is not early
    const Shape& x = g.value(n.inputs.at(0)).shape;
    if (x.size() == 4 && x[2] > 0 && in[2] / x[2] >= kMinInputStride) convs.emplace_back(n.name, stride);
  }
  return {};  // never coarser than max_stride: a shallow network has no "early" part to set apart
}

Decisions initial_decisions(const Graph& g, const QuantOptions& o) {
  Decisions d;
  const std::string fp = precision_name(o.float_precision);
  std::set<std::string> head;
  if (o.default_policy)
    for (auto& c : head_output_convs(g)) head.insert(c);
  std::map<std::string, int64_t> high_res;
  if (o.default_policy)
    for (auto& [name, stride] : high_resolution_convs(g, o.high_res_fp16_stride)) high_res[name] = stride;
  for (const Node& n : g.nodes) {
    if (is_qdq(n)) fail("node '", n.name, "' is a ", n.op, ": the graph is already quantized");
    Decision& x = d[n.name];
    if (n.op == "kestrel.Conv") {
      if (head.count(n.name)) x = {LayerPrecision::FP16, "default policy: detection head output conv"};
      else if (high_res.count(n.name))
        x = {LayerPrecision::FP16,
             "default policy: high-resolution backbone conv (output stride " + std::to_string(high_res[n.name]) + ")"};
      else x = {LayerPrecision::Int8, o.default_policy ? "default policy: int8" : "int8 everywhere possible"};
    } else if (o.default_policy && (n.op == "kestrel.DetectV8" || n.op == "kestrel.DetectV5")) {
      x = {LayerPrecision::FP16, "default policy: detection decode"};
    } else {
      x = {o.float_precision, "no int8 kernel: runs in " + fp};
    }
  }
  for (const LayerRule& r : o.rules) {
    bool matched = false;
    for (const Node& n : g.nodes) {
      if (fnmatch(r.pattern.c_str(), n.name.c_str(), 0) != 0) continue;
      matched = true;
      if (r.precision == LayerPrecision::Int8 && n.op != "kestrel.Conv") continue;  // only convs have INT8 kernels
      d[n.name] = {r.precision, "--layer-precision " + r.pattern, true};
    }
    if (!matched) {
      std::string example = g.nodes.empty() ? "" : " (layer names look like '" + g.nodes.front().name + "')";
      throw UsageError("--layer-precision pattern '" + r.pattern + "' matches no layer" + example);
    }
  }
  return d;
}

}  // namespace detail
}  // namespace kestrel::quant
