// rebatch: the same graph at another batch. Shapes are re-inferred from the inputs; what a tracer or
// canonicalize() baked into attributes (Reshape targets, Resize output sizes) follows when its
// leading entry is the batch of the tensor it applies to.
#include "kestrel/passes.h"

namespace kestrel::passes {

namespace {
// The leading entry of a baked shape that belongs to the batch of `x`.
bool leads_with_batch(const std::vector<int64_t>& dims, const Shape& x, int64_t old_batch) {
  return !dims.empty() && !x.empty() && dims[0] == old_batch && x[0] == old_batch;
}
}  // namespace

void rebatch(Graph& g, int64_t batch) {
  KESTREL_CHECK(batch >= 1, "rebatch: batch must be at least 1, not ", batch);
  const int64_t old = g.batch();
  if (old == batch) return;
  for (const std::string& name : g.inputs) {
    const Value& v = g.value(name);
    KESTREL_CHECK(!v.shape.empty() && v.shape[0] == old, "cannot re-batch the model: input '", name, "' has shape ",
                  shape_str(v.shape), " (its first dimension is not the batch ", old, ")");
  }
  for (Node& n : g.nodes) {
    if (n.inputs.empty() || n.inputs[0].empty()) continue;
    const Shape& x = g.value(n.inputs[0]).shape;
    if (n.op == "Reshape" && n.attrs.has("shape")) {
      std::vector<int64_t> dims = n.attrs.ints("shape");
      if (leads_with_batch(dims, x, old)) dims[0] = batch, n.attrs.set("shape", dims);
    } else if (n.op == "Reshape" && n.inputs.size() > 1 && g.value(n.inputs[1]).is_constant()) {
      std::vector<int64_t> dims = g.value(n.inputs[1]).constant->to_i64();
      if (!leads_with_batch(dims, x, old)) continue;
      dims[0] = batch;
      Value v;  // a private constant: the original may be shared by other nodes
      v.name = n.inputs[1] + "__batch" + std::to_string(batch);
      v.dtype = DType::I64;
      v.shape = {static_cast<int64_t>(dims.size())};
      v.shape_known = true;
      v.constant = HostTensor::from_i64(v.shape, dims);
      n.inputs[1] = v.name;
      if (!g.has_value(v.name)) g.add_value(std::move(v));
    } else if (n.op == "Resize" && n.attrs.has("kestrel_sizes")) {
      std::vector<int64_t> dims = n.attrs.ints("kestrel_sizes");
      if (leads_with_batch(dims, x, old)) dims[0] = batch, n.attrs.set("kestrel_sizes", dims);
    }
  }
  for (const std::string& name : g.inputs) g.value(name).shape[0] = batch;
  g.infer_shapes();
  g.prune_values();
  for (const std::string& name : g.outputs) {
    const Shape& s = g.value(name).shape;
    KESTREL_CHECK(!s.empty() && s[0] == batch, "cannot re-batch the model: output '", name, "' has shape ", shape_str(s),
                  " at batch ", batch, " (its first dimension does not follow the batch)");
  }
}

}  // namespace kestrel::passes
