// The optimizer pipeline: clean-up, then the fusions from the most local (BN into its conv) to the
// most global (the whole detect decode), then clean-up again. The order matters: activations fuse
// into convs before residual adds can be found on kestrel.Conv outputs, and the detect head is matched
// last so that it sees the head maps in their final (fused) form.
#include <sstream>

#include "kestrel/passes.h"

namespace kestrel::passes {

int OptimizeReport::rewrites(const std::string& pass) const {
  for (auto& p : passes)
    if (p.name == pass) return p.rewrites;
  return 0;
}

std::string OptimizeReport::summary() const {
  std::ostringstream os;
  os << "optimize: " << nodes_before << " -> " << nodes_after << " nodes\n";
  for (auto& p : passes) {
    os << "  " << p.name << ": " << p.rewrites;
    if (!p.detail.empty()) os << " (" << p.detail << ")";
    os << "\n";
  }
  return os.str();
}

OptimizeReport optimize(Graph& g, const OptimizeOptions& o) {
  OptimizeReport report;
  report.nodes_before = g.nodes.size();
  auto removed = [&](auto&& fn) {  // for the clean-up passes, which report no count themselves
    const size_t before = g.nodes.size();
    fn();
    return static_cast<int>(before - g.nodes.size());
  };
  if (o.fold_constants)
    report.passes.push_back({"fold_constants", removed([&] { fold_constants(g); }), "nodes folded"});
  if (o.eliminate_dead_nodes)
    report.passes.push_back({"eliminate_dead_nodes", removed([&] { eliminate_dead_nodes(g); }), "nodes removed"});
  if (o.fold_batchnorm) report.passes.push_back({"fold_batchnorm", fold_batchnorm(g), ""});
  if (o.fuse_conv_activation) {
    int with_act = 0;
    const int convs = fuse_conv_activation(g, &with_act);
    report.passes.push_back({"fuse_conv_activation", convs, std::to_string(with_act) + " with an activation"});
  }
  if (o.fuse_residual_add) report.passes.push_back({"fuse_residual_add", fuse_residual_add(g), ""});
  if (o.fuse_sppf) report.passes.push_back({"fuse_sppf", fuse_sppf(g), ""});
  if (o.fuse_detect_head) report.passes.push_back({"fuse_detect_head", fuse_detect_head(g), ""});
  if (o.eliminate_dead_nodes)
    report.passes.push_back({"eliminate_dead_nodes", removed([&] { eliminate_dead_nodes(g); }), "nodes removed"});
  g.infer_shapes();
  report.nodes_after = g.nodes.size();
  return report;
}

OptimizeReport optimize_for_engine(Graph& g, bool qdq) {
  OptimizeReport report;
  if (!qdq) report = optimize(g);
  else report.nodes_before = g.nodes.size();
  report.passes.push_back({"fuse_attention", fuse_attention(g), ""});
  report.nodes_after = g.nodes.size();
  return report;
}

}  // namespace kestrel::passes
