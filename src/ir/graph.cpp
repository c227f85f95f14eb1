#include "kestrel/graph.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

namespace kestrel {

namespace {
template <typename T>
const T& get_attr(const std::map<std::string, Attribute>& m, const std::string& k, const char* kind) {
  auto it = m.find(k);
  KESTREL_CHECK(it != m.end(), "missing attribute '", k, "'");
  const T* v = std::get_if<T>(&it->second);
  KESTREL_CHECK(v, "attribute '", k, "' is not ", kind);
  return *v;
}
}  // namespace

int64_t Attributes::i(const std::string& k, std::optional<int64_t> dflt) const {
  if (!has(k) && dflt) return *dflt;
  return get_attr<int64_t>(map_, k, "an int");
}
float Attributes::f(const std::string& k, std::optional<float> dflt) const {
  if (!has(k) && dflt) return *dflt;
  if (auto it = map_.find(k); it != map_.end())
    if (auto* iv = std::get_if<int64_t>(&it->second)) return static_cast<float>(*iv);
  return get_attr<float>(map_, k, "a float");
}
std::string Attributes::s(const std::string& k, std::optional<std::string> dflt) const {
  if (!has(k) && dflt) return *dflt;
  return get_attr<std::string>(map_, k, "a string");
}
std::vector<int64_t> Attributes::ints(const std::string& k, std::optional<std::vector<int64_t>> dflt) const {
  if (!has(k) && dflt) return *dflt;
  return get_attr<std::vector<int64_t>>(map_, k, "a list of ints");
}
std::vector<float> Attributes::floats(const std::string& k, std::optional<std::vector<float>> dflt) const {
  if (!has(k) && dflt) return *dflt;
  return get_attr<std::vector<float>>(map_, k, "a list of floats");
}
const HostTensor& Attributes::tensor(const std::string& k) const { return get_attr<HostTensor>(map_, k, "a tensor"); }

Value& Graph::value(const std::string& name) {
  auto it = values_.find(name);
  KESTREL_CHECK(it != values_.end(), "unknown tensor '", name, "'");
  return it->second;
}
const Value& Graph::value(const std::string& name) const {
  auto it = values_.find(name);
  KESTREL_CHECK(it != values_.end(), "unknown tensor '", name, "'");
  return it->second;
}
Value* Graph::find(const std::string& name) {
  auto it = values_.find(name);
  return it == values_.end() ? nullptr : &it->second;
}
const Value* Graph::find(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? nullptr : &it->second;
}
Value& Graph::add_value(Value v) {
  std::string key = v.name;
  auto [it, inserted] = values_.insert_or_assign(key, std::move(v));
  (void)inserted;
  return it->second;
}
std::vector<std::string> Graph::value_names() const {
  std::vector<std::string> names;
  names.reserve(values_.size());
  for (auto& [k, v] : values_) names.push_back(k);
  std::sort(names.begin(), names.end());
  return names;
}

std::unordered_map<std::string, size_t> Graph::producers() const {
  std::unordered_map<std::string, size_t> p;
  for (size_t i = 0; i < nodes.size(); ++i)
    for (auto& o : nodes[i].outputs)
      if (!o.empty()) p[o] = i;
  return p;
}

std::unordered_map<std::string, std::vector<size_t>> Graph::consumers() const {
  std::unordered_map<std::string, std::vector<size_t>> c;
  for (size_t i = 0; i < nodes.size(); ++i)
    for (auto& in : nodes[i].inputs)
      if (!in.empty()) c[in].push_back(i);
  return c;
}

void Graph::toposort() {
  // Kahn's algorithm, keeping the original relative order among ready nodes so that a graph that is
  // already sorted is left unchanged (stable, reproducible layer order in inspect and engines).
  const auto prod = producers();
  std::vector<std::vector<size_t>> users(nodes.size());
  std::vector<int> pending(nodes.size(), 0);
  for (size_t i = 0; i < nodes.size(); ++i) {
    std::set<size_t> deps;
    for (auto& in : nodes[i].inputs) {
      if (in.empty()) continue;
      auto it = prod.find(in);
      if (it != prod.end()) {
        deps.insert(it->second);
      } else {
        const Value* v = find(in);
        KESTREL_CHECK(v && (v->is_constant() || std::count(inputs.begin(), inputs.end(), in)),
                      "node '", nodes[i].name, "' (", nodes[i].op, ") reads '", in,
                      "', which no node, input or initializer provides");
      }
    }
    for (size_t d : deps) users[d].push_back(i);
    pending[i] = static_cast<int>(deps.size());
  }
  std::set<size_t> ready;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (pending[i] == 0) ready.insert(i);
  std::vector<Node> sorted;
  sorted.reserve(nodes.size());
  while (!ready.empty()) {
    size_t i = *ready.begin();
    ready.erase(ready.begin());
    sorted.push_back(std::move(nodes[i]));
    for (size_t u : users[i])
      if (--pending[u] == 0) ready.insert(u);
  }
  KESTREL_CHECK(sorted.size() == nodes.size(), "graph '", name, "' has a cycle");
  nodes = std::move(sorted);
}

void Graph::prune_values() {
  std::set<std::string> used(inputs.begin(), inputs.end());
  used.insert(outputs.begin(), outputs.end());
  for (auto& n : nodes) {
    used.insert(n.inputs.begin(), n.inputs.end());
    used.insert(n.outputs.begin(), n.outputs.end());
  }
  for (auto it = values_.begin(); it != values_.end();)
    it = used.count(it->first) ? std::next(it) : values_.erase(it);
}

int64_t Graph::batch() const {
  KESTREL_CHECK(!inputs.empty(), "graph has no inputs");
  const Value& v = value(inputs.front());
  return v.shape.empty() ? 1 : v.shape[0];
}

int64_t Graph::parameter_count() const {
  // Learned parameters as PyTorch counts them: weights and biases of the layers that have them.
  // Constants such as anchor grids, strides or shape tensors are buffers, not parameters.
  static const std::set<std::string> weighted = {"Conv", "ConvTranspose", "Gemm", "MatMul",
                                                 "BatchNormalization", "kestrel.Conv"};
  // Quantized weights (INT8 Q/DQ models) arrive through a DequantizeLinear of an int8 constant.
  std::map<std::string, const Node*> dequantized;
  for (auto& node : nodes)
    if (node.op == "DequantizeLinear" && !node.inputs.empty() && !node.outputs.empty())
      if (const Value* q = find(node.inputs[0]); q && q->is_constant()) dequantized[node.outputs[0]] = &node;
  std::set<std::string> seen;
  int64_t n = 0;
  for (auto& node : nodes) {
    if (!weighted.count(node.op)) continue;
    const size_t max_inputs = node.op == "BatchNormalization" ? 3 : node.inputs.size();  // not mean/var
    for (size_t i = 0; i < node.inputs.size() && i < max_inputs; ++i) {
      std::string in = node.inputs[i];
      if (auto dq = dequantized.find(in); dq != dequantized.end()) in = dq->second->inputs[0];
      const Value* v = in.empty() ? nullptr : find(in);
      if (v && v->is_constant() && seen.insert(in).second) n += v->constant->numel();
    }
  }
  return n;
}

}  // namespace kestrel
