#include "passes/fusion_util.h"

#include <algorithm>

namespace kestrel::passes::detail {

Uses::Uses(const Graph& g) : outputs_(g.outputs.begin(), g.outputs.end()) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (auto& o : g.nodes[i].outputs)
      if (!o.empty()) producer_[o] = i;
    for (auto& in : g.nodes[i].inputs)
      if (!in.empty()) readers_[in].push_back(i);
  }
}

long Uses::producer(const std::string& v) const {
  auto it = producer_.find(v);
  return it == producer_.end() ? -1 : static_cast<long>(it->second);
}

const std::vector<size_t>& Uses::readers(const std::string& v) const {
  static const std::vector<size_t> kNone;
  auto it = readers_.find(v);
  return it == readers_.end() ? kNone : it->second;
}

bool Uses::only_read_by(const std::string& v, size_t node) const {
  if (is_graph_output(v)) return false;
  const auto& r = readers(v);
  return !r.empty() && std::all_of(r.begin(), r.end(), [&](size_t i) { return i == node; });
}

bool is_constant(const Graph& g, const std::string& v) {
  const Value* p = v.empty() ? nullptr : g.find(v);
  return p && p->is_constant();
}

bool has_input(const Node& n, size_t i) { return i < n.inputs.size() && !n.inputs[i].empty(); }

std::vector<std::string> fused_list(const Node& n) {
  auto it = n.attrs.all().find("kestrel_fused");
  if (it == n.attrs.all().end()) return {};
  if (auto* v = std::get_if<std::vector<std::string>>(&it->second)) return *v;
  return {};
}

void seed_fused(Node& n) {
  if (!n.attrs.has("kestrel_fused")) n.attrs.set("kestrel_fused", std::vector<std::string>{n.op + ":" + n.name});
}

void record_fused(Node& into, const Node& absorbed) {
  std::vector<std::string> list = fused_list(into);
  std::vector<std::string> more = fused_list(absorbed);
  if (more.empty()) more.push_back(absorbed.op + ":" + absorbed.name);
  list.insert(list.end(), more.begin(), more.end());
  into.attrs.set("kestrel_fused", std::move(list));
}

std::string fresh_value_name(const Graph& g, const std::string& base) {
  std::string name = base;
  for (int i = 1; g.has_value(name); ++i) name = base + "_" + std::to_string(i);
  return name;
}

std::string fresh_node_name(const Graph& g, const std::string& base) {
  std::unordered_set<std::string> used;
  for (auto& n : g.nodes) used.insert(n.name);
  std::string name = base;
  for (int i = 1; used.count(name); ++i) name = base + "_" + std::to_string(i);
  return name;
}

std::string common_scope(const std::vector<std::string>& names) {
  if (names.empty()) return "";
  std::string prefix = names.front();
  for (auto& n : names) {
    size_t k = 0;
    while (k < prefix.size() && k < n.size() && prefix[k] == n[k]) ++k;
    prefix.resize(k);
  }
  const size_t slash = prefix.rfind('/');
  return slash == std::string::npos ? "" : prefix.substr(0, slash + 1);
}

void erase_nodes(Graph& g, const std::vector<bool>& dead) {
  std::vector<Node> kept;
  kept.reserve(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!dead[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
}

void finish(Graph& g) {
  g.prune_values();
  g.infer_shapes();
}

int apply_rewrites(Graph& g, const std::vector<bool>& dead, int rewrites) {
  if (!rewrites) return 0;
  erase_nodes(g, dead);
  finish(g);
  return rewrites;
}

}  // namespace kestrel::passes::detail
