// Which values of a Q/DQ graph an INT8 engine stores as int8 codes rather than fp16. A value qualifies
// when an INT8 conv or a data-movement op (quant::moved_values: Concat, Split, Slice, nearest Resize,
// MaxPool, SPPF) makes it and every reader either quantizes it (QuantizeLinear, all with one scale) or
// moves it on into another such value; a data-movement op runs on codes only when all its inputs and
// outputs do, with one scale. Then no quantize pass is needed at all along C2f's concat, split halves,
// residuals and the neck's upsample-concat paths: producers write codes in place, readers read them
// (exact: with one scale, quantizing commutes with these ops; quantize_graph makes the scales equal).
#include <set>

#include "builder/build_plan.h"
#include "kestrel/quant.h"

namespace kestrel::bld {

std::map<std::string, float> int8_values(const Graph& g) {
  const auto prod = g.producers();
  const auto cons = g.consumers();
  std::set<std::string> io(g.inputs.begin(), g.inputs.end());
  io.insert(g.outputs.begin(), g.outputs.end());
  auto moves_data = [&](const Node& n) { return !quant::moved_values(g, n).empty(); };
  auto int8_conv = [&](const Node& n) {
    if (n.op != "kestrel.Conv" || n.inputs.empty()) return false;
    auto x = prod.find(n.inputs[0]);
    return x != prod.end() && g.nodes[x->second].op == "DequantizeLinear";
  };

  // Candidates by the kinds of their producer and readers.
  std::set<std::string> cand;
  for (const Node& n : g.nodes) {
    if (!int8_conv(n) && !moves_data(n)) continue;
    for (const std::string& v : n.outputs) {
      if (v.empty() || io.count(v)) continue;
      const Value& val = g.value(v);
      if (!val.shape_known || val.shape.size() != 4) continue;
      bool ok = true;
      if (auto it = cons.find(v); it != cons.end())
        for (size_t r : it->second) ok &= g.nodes[r].op == "QuantizeLinear" || moves_data(g.nodes[r]);
      if (ok) cand.insert(v);
    }
  }
  // A data-movement node runs on codes only if everything it moves is a candidate. Afterwards the
  // candidates are whole data-movement groups (or values outside any group).
  for (bool changed = true; changed;) {
    changed = false;
    for (const Node& n : g.nodes) {
      const std::vector<std::string> m = quant::moved_values(g, n);
      bool all = true;
      for (auto& v : m) all &= cand.count(v) != 0;
      if (!all)
        for (auto& v : m) changed |= cand.erase(v) != 0;
    }
  }
  // One scale per group: the one its QuantizeLinear readers use (none, or several: stays fp16).
  const std::map<std::string, std::string> group = quant::data_movement_groups(g);
  auto root = [&](const std::string& v) {
    auto it = group.find(v);
    return it == group.end() ? v : it->second;
  };
  std::map<std::string, std::set<float>> group_scales;
  for (const std::string& v : cand) {
    std::set<float>& s = group_scales[root(v)];
    if (auto it = cons.find(v); it != cons.end())
      for (size_t r : it->second) {
        const Node& q = g.nodes[r];
        if (q.op != "QuantizeLinear") continue;
        const Value& sv = g.value(q.inputs.at(1));
        if (sv.is_constant() && sv.constant->numel() == 1) s.insert(sv.constant->to_f32()[0]);
        else s.insert(-1.f);  // not a constant scalar: never int8
      }
  }
  std::map<std::string, float> out;
  for (const std::string& v : cand) {
    const std::set<float>& s = group_scales[root(v)];
    if (s.size() == 1 && *s.begin() > 0.f) out[v] = *s.begin();
  }
  return out;
}

}  // namespace kestrel::bld
