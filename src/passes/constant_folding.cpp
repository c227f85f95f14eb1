#include <unordered_set>

#include "backend/cpu/kernel.h"
#include "ir/op_registry.h"
#include "kestrel/passes.h"

namespace kestrel::passes {

namespace {
// Folding a node materialises its outputs; never inflate the model with huge constants.
constexpr int64_t kMaxFoldElements = 1 << 22;

bool all_inputs_constant(const Graph& g, const Node& n) {
  for (auto& in : n.inputs)
    if (!in.empty() && !g.value(in).is_constant()) return false;
  return true;
}

void rebatch_reshape(Graph& g, Node& n, const FoldOptions& o) {
  if (n.op != "Reshape" || o.new_batch <= 0 || o.new_batch == o.old_batch || n.inputs.size() < 2) return;
  const Value& x = g.value(n.inputs[0]);
  Value* shape = g.find(n.inputs[1]);
  if (!shape || !shape->is_constant() || x.shape.empty() || x.shape[0] != o.new_batch) return;
  auto dims = shape->constant->to_i64();
  if (dims.empty() || dims[0] != o.old_batch) return;
  dims[0] = o.new_batch;
  // A private constant: the original may be shared by other nodes.
  Value v;
  v.name = n.inputs[1] + "__rebatched";
  v.dtype = DType::I64;
  v.shape = {static_cast<int64_t>(dims.size())};
  v.shape_known = true;
  v.constant = HostTensor::from_i64(v.shape, dims);
  n.inputs[1] = v.name;
  g.add_value(std::move(v));
}
}  // namespace

void fold_constants(Graph& g, const FoldOptions& options) {
  std::vector<Node> kept;
  kept.reserve(g.nodes.size());
  const std::unordered_set<std::string> outputs(g.outputs.begin(), g.outputs.end());
  for (Node& n : g.nodes) {
    const OpInfo* op = find_op(n.op);
    KESTREL_CHECK(op, "unsupported operator '", n.op, "' (node '", n.name, "')");
    rebatch_reshape(g, n, options);
    InferContext ctx(g, n);
    op->infer(ctx);
    bool foldable = all_inputs_constant(g, n);
    if (n.op == "Shape") foldable = true;  // the input's shape is known even when its data is not
    for (auto& o : n.outputs)
      if (!o.empty() && (outputs.count(o) || shape_numel(g.value(o).shape) > kMaxFoldElements)) foldable = false;
    if (!foldable) {
      kept.push_back(std::move(n));
      continue;
    }
    std::vector<const HostTensor*> args;
    for (auto& in : n.inputs) {
      if (in.empty()) {
        args.push_back(nullptr);
      } else if (g.value(in).is_constant()) {
        args.push_back(&*g.value(in).constant);
      } else {
        args.push_back(nullptr);
      }
    }
    std::vector<HostTensor> results;
    if (n.op == "Shape" && !g.value(n.inputs[0]).is_constant()) {
      const Shape& s = g.value(n.inputs[0]).shape;
      const Value& out = g.value(n.outputs[0]);
      const int64_t r = static_cast<int64_t>(s.size());
      int64_t start = n.attrs.i("start", 0);
      if (start < 0) start += r;
      start = std::max<int64_t>(0, std::min(start, r));
      std::vector<int64_t> dims(s.begin() + start, s.begin() + start + out.shape[0]);
      results.push_back(HostTensor::from_i64(out.shape, dims));
    } else {
      results = cpu::eval_node(g, n, args);
    }
    for (size_t k = 0; k < n.outputs.size(); ++k)
      if (!n.outputs[k].empty()) g.value(n.outputs[k]).constant = std::move(results[k]);
  }
  g.nodes = std::move(kept);
  g.prune_values();
}

}  // namespace kestrel::passes
