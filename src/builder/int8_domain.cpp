// Which values of a Q/DQ graph an INT8 engine stores as int8 codes rather than fp16. A value qualifies
// when an INT8 conv or a data-movement op (Concat, Split, Slice, nearest Resize, MaxPool, SPPF) makes
// it and every reader either quantizes it (QuantizeLinear, all with one scale) or moves it on into
// another such value; a data-movement op runs on codes only when all its inputs and outputs do, with
// one scale. Then no quantize pass is needed at all along C2f's concat, split halves, residuals and
// the neck's upsample-concat paths: producers write codes in place, readers read them (exact: with
// one scale, quantizing commutes with these ops; quant::detail::unify_scale_groups makes the scales
// equal).
#include <functional>
#include <set>

#include "builder/build_plan.h"

namespace kestrel::bld {

namespace {

bool moves_data(const Node& n) {
  if (n.op == "Concat" || n.op == "Split" || n.op == "Slice" || n.op == "MaxPool" || n.op == "kestrel.SPPF") return true;
  return n.op == "Resize" && n.attrs.s("mode", "nearest") == "nearest";
}

// The non-constant values a data-movement node moves: its data inputs and its outputs.
std::vector<std::string> members(const Graph& g, const Node& n) {
  std::vector<std::string> m;
  const size_t data_inputs = n.op == "Concat" ? n.inputs.size() : 1;
  for (size_t i = 0; i < data_inputs && i < n.inputs.size(); ++i)
    if (!n.inputs[i].empty() && !g.value(n.inputs[i]).is_constant()) m.push_back(n.inputs[i]);
  for (const std::string& o : n.outputs)
    if (!o.empty()) m.push_back(o);
  return m;
}

}  // namespace

std::map<std::string, float> int8_values(const Graph& g) {
  const auto prod = g.producers();
  const auto cons = g.consumers();
  const std::set<std::string> io = [&] {
    std::set<std::string> s(g.inputs.begin(), g.inputs.end());
    s.insert(g.outputs.begin(), g.outputs.end());
    return s;
  }();
  auto producer = [&](const std::string& v) -> const Node* {
    auto it = prod.find(v);
    return it == prod.end() ? nullptr : &g.nodes[it->second];
  };
  auto int8_conv = [&](const Node& n) {
    if (n.op != "kestrel.Conv" || n.inputs.empty()) return false;
    const Node* x = producer(n.inputs[0]);
    return x && x->op == "DequantizeLinear";
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
  // A data-movement node runs on codes only if everything it moves is a candidate.
  for (bool changed = true; changed;) {
    changed = false;
    for (const Node& n : g.nodes) {
      if (!moves_data(n)) continue;
      const std::vector<std::string> m = members(g, n);
      bool all = true;
      for (auto& v : m) all &= cand.count(v) != 0;
      if (!all)
        for (auto& v : m) changed |= cand.erase(v) != 0;
    }
  }
  // One scale per group of values linked by data movement: the scale its QuantizeLinear readers use.
  std::map<std::string, std::string> parent;
  std::function<std::string(const std::string&)> find = [&](const std::string& v) -> std::string {
    auto it = parent.find(v);
    if (it == parent.end() || it->second == v) return v;
    return it->second = find(it->second);
  };
  for (const Node& n : g.nodes) {
    if (!moves_data(n)) continue;
    const std::vector<std::string> m = members(g, n);
    if (m.empty() || !cand.count(m[0])) continue;
    for (size_t i = 1; i < m.size(); ++i) parent[find(m[i])] = find(m[0]);
  }
  std::map<std::string, std::set<float>> group_scales;
  for (const std::string& v : cand) {
    std::set<float>& s = group_scales[find(v)];
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
    const std::set<float>& s = group_scales[find(v)];
    if (s.size() == 1 && *s.begin() > 0.f) out[v] = *s.begin();
  }
  return out;
}

}  // namespace kestrel::bld
