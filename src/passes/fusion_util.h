#pragma once
// Helpers shared by the fusion passes (internal to src/passes).
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "kestrel/graph.h"

namespace kestrel::passes::detail {

// Who produces and who reads each value, computed once per sweep. A pass that rewires values keeps
// it current with set_producer() instead of recomputing it.
class Uses {
 public:
  explicit Uses(const Graph& g);
  // Index of the producing node, or -1 for graph inputs and constants.
  long producer(const std::string& v) const;
  void set_producer(const std::string& v, size_t node) { producer_[v] = node; }
  // Node indices reading v, once per input slot (Mul(x, x) lists its node twice).
  const std::vector<size_t>& readers(const std::string& v) const;
  bool is_graph_output(const std::string& v) const { return outputs_.count(v) != 0; }
  // True when v is not a graph output and every read of it is by `node`: rewriting that node may
  // then make v disappear without anybody noticing.
  bool only_read_by(const std::string& v, size_t node) const;

 private:
  std::unordered_map<std::string, size_t> producer_;
  std::unordered_map<std::string, std::vector<size_t>> readers_;
  std::unordered_set<std::string> outputs_;
};

bool is_constant(const Graph& g, const std::string& v);
bool has_input(const Node& n, size_t i);
// The kestrel_fused list of a node (empty when it has none).
std::vector<std::string> fused_list(const Node& n);
// Starts n's kestrel_fused with n itself ("op:name") unless it already has a list.
void seed_fused(Node& n);
// Appends to `into`'s kestrel_fused what `absorbed` stands for: its own list when it is already a
// fused node (so the list always names original nodes), else "op:name".
void record_fused(Node& into, const Node& absorbed);
// A value / node name not used yet in g, derived from base.
std::string fresh_value_name(const Graph& g, const std::string& base);
std::string fresh_node_name(const Graph& g, const std::string& base);
// The longest common "/"-terminated prefix of the names (ONNX exports name nodes by module path, so
// "/model.9/m/MaxPool" and "/model.9/Concat" give "/model.9/").
std::string common_scope(const std::vector<std::string>& names);
// Drops the nodes marked dead, keeping the others' order.
void erase_nodes(Graph& g, const std::vector<bool>& dead);
// The epilogue of every pass: unused values go, and shapes are inferred again.
void finish(Graph& g);
// The epilogue of a pass that marked the nodes it replaced dead: with no rewrite g stays as it is,
// else the dead nodes go and finish(g) runs. Returns `rewrites`.
int apply_rewrites(Graph& g, const std::vector<bool>& dead, int rewrites);

}  // namespace kestrel::passes::detail
