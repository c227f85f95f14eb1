// Shared scales across data movement. Concat, Split, Slice, nearest Resize, MaxPool and SPPF only
// move or select values; when their inputs and outputs carry one scale, quantizing commutes with them
// exactly (rounding is monotonic, so even max pooling of codes equals the codes of max pooling). That
// lets the engine keep such tensors as int8 from producer to consumer -- C2f's concat written in place
// by int8 convs, the split halves read as views of it, upsampled features concatenated as codes --
// instead of storing fp16 and quantizing it again for every INT8 reader (TensorRT ties concat scales
// the same way). Each group takes its members' largest scale, so no member clips more than before.
#include <algorithm>

#include "quant/internal.h"

namespace kestrel::quant {

std::vector<std::string> moved_values(const Graph& g, const Node& n) {
  size_t data_inputs = 0;
  if (n.op == "Concat") data_inputs = n.inputs.size();
  else if (n.op == "Split" || n.op == "Slice" || n.op == "MaxPool" || n.op == "kestrel.SPPF") data_inputs = 1;
  else if (n.op == "Resize" && n.attrs.s("mode", "nearest") == "nearest") data_inputs = 1;
  else return {};
  std::vector<std::string> m;
  for (size_t i = 0; i < data_inputs && i < n.inputs.size(); ++i)
    if (!n.inputs[i].empty() && !g.value(n.inputs[i]).is_constant()) m.push_back(n.inputs[i]);
  for (const std::string& o : n.outputs)
    if (!o.empty()) m.push_back(o);
  return m;
}

std::map<std::string, std::string> data_movement_groups(const Graph& g) {
  std::map<std::string, std::string> parent;
  auto find = [&](std::string v) {
    while (parent.at(v) != v) v = parent[v] = parent.at(parent.at(v));  // path halving
    return v;
  };
  for (const Node& n : g.nodes) {
    const std::vector<std::string> m = moved_values(g, n);
    for (const std::string& v : m) parent.emplace(v, v);
    for (size_t i = 1; i < m.size(); ++i) parent[find(m[i])] = find(m[0]);
  }
  std::map<std::string, std::string> group;
  for (const auto& entry : parent) group[entry.first] = find(entry.first);
  return group;
}

}  // namespace kestrel::quant

namespace kestrel::quant::detail {

std::map<std::string, float> unify_scale_groups(const Graph& g, const std::map<std::string, float>& scales) {
  const std::map<std::string, std::string> group = data_movement_groups(g);
  std::map<std::string, float> group_scale;
  for (const auto& [v, root] : group)
    if (auto s = scales.find(v); s != scales.end()) group_scale[root] = std::max(group_scale[root], s->second);
  std::map<std::string, float> out = scales;
  for (const auto& [v, root] : group)
    if (auto gs = group_scale.find(root); gs != group_scale.end()) out[v] = gs->second;
  return out;
}

}  // namespace kestrel::quant::detail
