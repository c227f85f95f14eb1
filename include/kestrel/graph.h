#pragma once
// Kestrel's graph IR: named values (tensors) connected by nodes in topological order. Values carry a
// dtype and a concrete shape (after inference); constants (initializers) carry their data.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "kestrel/tensor.h"

namespace kestrel {

using Attribute = std::variant<int64_t, float, std::string, std::vector<int64_t>, std::vector<float>,
                               std::vector<std::string>, HostTensor>;

class Attributes {
 public:
  bool has(const std::string& k) const { return map_.count(k) != 0; }
  void set(const std::string& k, Attribute v) { map_[k] = std::move(v); }
  void erase(const std::string& k) { map_.erase(k); }
  int64_t i(const std::string& k, std::optional<int64_t> dflt = std::nullopt) const;
  float f(const std::string& k, std::optional<float> dflt = std::nullopt) const;
  std::string s(const std::string& k, std::optional<std::string> dflt = std::nullopt) const;
  std::vector<int64_t> ints(const std::string& k, std::optional<std::vector<int64_t>> dflt = std::nullopt) const;
  std::vector<float> floats(const std::string& k, std::optional<std::vector<float>> dflt = std::nullopt) const;
  const HostTensor& tensor(const std::string& k) const;
  const std::map<std::string, Attribute>& all() const { return map_; }

 private:
  std::map<std::string, Attribute> map_;
};

struct Value {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  bool shape_known = false;
  std::optional<HostTensor> constant;  // set for initializers and folded constants
  bool is_constant() const { return constant.has_value(); }
};

struct Node {
  std::string name;
  std::string op;                    // ONNX op type, or a Kestrel fused op ("kestrel.*")
  std::vector<std::string> inputs;   // "" marks an omitted optional input
  std::vector<std::string> outputs;
  Attributes attrs;
};

class Graph {
 public:
  std::string name;
  std::vector<Node> nodes;  // topological order
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::map<std::string, std::string> metadata;  // e.g. Ultralytics' names / stride / imgsz
  int opset = 17;
  std::string batch_symbol;  // non-empty: the model has a dynamic batch under this name

  Value& value(const std::string& name);
  const Value& value(const std::string& name) const;
  Value* find(const std::string& name);
  const Value* find(const std::string& name) const;
  bool has_value(const std::string& name) const { return values_.count(name) != 0; }
  Value& add_value(Value v);
  void remove_value(const std::string& name) { values_.erase(name); }
  std::vector<std::string> value_names() const;
  const std::unordered_map<std::string, Value>& values() const { return values_; }

  // Index of the node producing each value, and the nodes consuming it.
  std::unordered_map<std::string, size_t> producers() const;
  std::unordered_map<std::string, std::vector<size_t>> consumers() const;

  // Reorders nodes topologically; throws on a cycle or an input nobody produces.
  void toposort();
  // Runs shape and dtype inference over all nodes (throws with the node name on a mismatch).
  void infer_shapes();
  // Removes values no node or graph output references.
  void prune_values();

  int64_t batch() const;
  int64_t parameter_count() const;  // elements of all float constants used by nodes

 private:
  std::unordered_map<std::string, Value> values_;
};

}  // namespace kestrel
