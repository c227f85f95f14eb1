#include <unordered_set>

#include "kestrel/passes.h"

namespace kestrel::passes {

void eliminate_dead_nodes(Graph& g) {
  std::unordered_set<std::string> needed(g.outputs.begin(), g.outputs.end());
  std::vector<bool> keep(g.nodes.size(), false);
  for (size_t i = g.nodes.size(); i-- > 0;) {
    const Node& n = g.nodes[i];
    for (auto& o : n.outputs)
      if (needed.count(o)) keep[i] = true;
    if (keep[i])
      for (auto& in : n.inputs)
        if (!in.empty()) needed.insert(in);
  }
  std::vector<Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (keep[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
  g.prune_values();
}

}  // namespace kestrel::passes
