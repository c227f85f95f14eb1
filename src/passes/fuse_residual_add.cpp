// Add(kestrel.Conv output, other) -> kestrel.Conv with R = other: the Bottleneck shortcut is added in
// the conv's epilogue (after the activation), saving a full read and write of the sum.
#include "kestrel/passes.h"
#include "passes/fusion_util.h"

namespace kestrel::passes {

namespace {
using detail::has_input;

// Operand `v` of Add node `ai` can absorb the Add: a kestrel.Conv without a residual yet, whose output
// only this Add reads.
bool absorbing_conv(const Graph& g, const detail::Uses& uses, const std::vector<bool>& dead, const std::string& v,
                    size_t ai) {
  const long p = uses.producer(v);
  if (p < 0 || dead[p]) return false;
  const Node& n = g.nodes[p];
  return n.op == "kestrel.Conv" && n.outputs.size() == 1 && n.outputs[0] == v && !has_input(n, 3) &&
         uses.only_read_by(v, ai);
}
}  // namespace

int fuse_residual_add(Graph& g) {
  detail::Uses uses(g);
  std::vector<bool> dead(g.nodes.size(), false);
  int fused = 0;
  bool reorder = false;
  for (size_t ai = 0; ai < g.nodes.size(); ++ai) {
    const Node& add = g.nodes[ai];
    if (add.op != "Add" || add.inputs.size() != 2 || add.outputs.size() != 1) continue;
    const std::string &a = add.inputs[0], &b = add.inputs[1];
    if (a.empty() || b.empty() || a == b) continue;
    // The epilogue adds R elementwise: both operands must already have the sum's shape (no broadcast).
    const Value& va = g.value(a);
    const Value& vb = g.value(b);
    const Value& vy = g.value(add.outputs[0]);
    if (va.is_constant() || vb.is_constant() || va.shape != vy.shape || vb.shape != vy.shape ||
        va.dtype != DType::F32 || vb.dtype != DType::F32)
      continue;
    const bool ca = absorbing_conv(g, uses, dead, a, ai), cb = absorbing_conv(g, uses, dead, b, ai);
    if (!ca && !cb) continue;
    // Prefer the operand computed later as the conv: the other one then already exists when the conv
    // runs, and the node order stays as it is.
    bool use_b = cb;
    if (ca && cb) use_b = uses.producer(b) > uses.producer(a);
    const std::string conv_out = use_b ? b : a, residual = use_b ? a : b;
    const size_t ci = static_cast<size_t>(uses.producer(conv_out));
    Node& conv = g.nodes[ci];
    // Otherwise the conv must move after the residual's producer (toposort below does that; legal,
    // because the residual cannot depend on a value only this Add reads).
    if (uses.producer(residual) > static_cast<long>(ci)) reorder = true;
    conv.inputs.resize(4);  // an absent bias stays "" at index 2
    conv.inputs[3] = residual;
    conv.outputs[0] = add.outputs[0];
    uses.set_producer(add.outputs[0], ci);
    detail::record_fused(conv, add);
    dead[ai] = true;
    ++fused;
  }
  if (!fused) return 0;
  detail::erase_nodes(g, dead);
  if (reorder) g.toposort();  // stable: an already ordered graph keeps its order
  detail::finish(g);
  return fused;
}

}  // namespace kestrel::passes
