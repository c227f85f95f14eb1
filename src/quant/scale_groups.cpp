// Shared scales across data movement. Concat, Split, Slice, nearest Resize, MaxPool and SPPF only
// move or select values; when their inputs and outputs carry one scale, quantizing commutes with them
// exactly (rounding is monotonic, so even max pooling of codes equals the codes of max pooling). That
// lets the engine keep such tensors as int8 from producer to consumer -- C2f's concat written in place
// by int8 convs, the split halves read as views of it, upsampled features concatenated as codes --
// instead of storing fp16 and quantizing it again for every INT8 reader (TensorRT ties concat scales
// the same way). Each group takes its members' largest scale, so no member clips more than before.
#include <numeric>

#include "quant/internal.h"

namespace kestrel::quant::detail {

namespace {

// Inputs of `n` that pass through to its outputs unchanged in value (empty: none).
std::vector<std::string> moved_inputs(const Node& n) {
  if (n.op == "Concat") return n.inputs;
  if (n.op == "Split" || n.op == "Slice" || n.op == "MaxPool" || n.op == "kestrel.SPPF") return {n.inputs.at(0)};
  if (n.op == "Resize" && n.attrs.s("mode", "nearest") == "nearest") return {n.inputs.at(0)};
  return {};
}

class UnionFind {
 public:
  int id(const std::string& v) {
    auto [it, fresh] = ids_.emplace(v, static_cast<int>(parent_.size()));
    if (fresh) parent_.push_back(it->second);
    return it->second;
  }
  int find(int a) {
    while (parent_[static_cast<size_t>(a)] != a) a = parent_[static_cast<size_t>(a)] = parent_[static_cast<size_t>(parent_[static_cast<size_t>(a)])];
    return a;
  }
  void unite(int a, int b) { parent_[static_cast<size_t>(find(a))] = find(b); }
  const std::map<std::string, int>& ids() const { return ids_; }

 private:
  std::map<std::string, int> ids_;
  std::vector<int> parent_;
};

}  // namespace

std::map<std::string, float> unify_scale_groups(const Graph& g, const std::map<std::string, float>& scales) {
  UnionFind uf;
  for (const Node& n : g.nodes) {
    const std::vector<std::string> ins = moved_inputs(n);
    if (ins.empty()) continue;
    for (const std::string& out : n.outputs) {
      if (out.empty()) continue;
      for (const std::string& in : ins)
        if (!in.empty() && !g.value(in).is_constant()) uf.unite(uf.id(in), uf.id(out));
    }
  }
  std::map<int, float> group_scale;
  for (const auto& [name, id] : uf.ids())
    if (auto s = scales.find(name); s != scales.end()) {
      float& gs = group_scale[uf.find(id)];
      gs = std::max(gs, s->second);
    }
  std::map<std::string, float> out = scales;
  for (const auto& [name, id] : uf.ids())
    if (auto gs = group_scale.find(uf.find(id)); gs != group_scale.end()) out[name] = gs->second;
  return out;
}

}  // namespace kestrel::quant::detail
