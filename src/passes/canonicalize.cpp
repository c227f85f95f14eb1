// Parameter inputs that must be constant anyway become attributes, so that every backend (and the
// engine file) sees a single form of each op regardless of the opset that produced it.
#include "ir/op_registry.h"
#include "kestrel/passes.h"

namespace kestrel::passes {

namespace {
bool const_input(const Graph& g, const Node& n, size_t i) {
  return i < n.inputs.size() && !n.inputs[i].empty() && g.value(n.inputs[i]).is_constant();
}
const HostTensor& cinput(const Graph& g, const Node& n, size_t i) { return *g.value(n.inputs[i]).constant; }

// A scalar parameter (Clip's min / max, Pad's constant value): ONNX makes it one element; an empty or
// longer tensor is the model's error, named, never an out-of-range read.
float scalar_input(const Graph& g, const Node& n, size_t i, const char* what) {
  const std::vector<float> v = cinput(g, n, i).to_f32();
  if (v.size() != 1) fail(n.op, " node '", n.name, "': its ", what, " must be one value, got ", v.size());
  return v[0];
}

// Drops inputs from index `from` on (they are now attributes).
void truncate_inputs(Node& n, size_t from) {
  if (n.inputs.size() > from) n.inputs.resize(from);
}
}  // namespace

void canonicalize(Graph& g) {
  for (Node& n : g.nodes) {
    const std::string& op = n.op;
    if (op == "Reshape" && const_input(g, n, 1)) {
      n.attrs.set("shape", g.value(n.outputs[0]).shape);  // fully resolved: no 0 or -1 left
      n.attrs.erase("allowzero");
      truncate_inputs(n, 1);
    } else if ((op == "Unsqueeze" || op == "Squeeze" || op == "ReduceSum" || op == "ReduceMean" ||
                op == "ReduceMax" || op == "ReduceMin") && const_input(g, n, 1)) {
      n.attrs.set("axes", cinput(g, n, 1).to_i64());
      truncate_inputs(n, 1);
    } else if (op == "Split") {
      const Value& x = g.value(n.inputs[0]);
      const int64_t axis = normalize_axis(n.attrs.i("axis", 0), static_cast<int64_t>(x.shape.size()), n);
      std::vector<int64_t> sizes;
      for (auto& o : n.outputs) sizes.push_back(g.value(o).shape[axis]);
      n.attrs.set("axis", axis);
      n.attrs.set("split", sizes);
      n.attrs.erase("num_outputs");
      truncate_inputs(n, 1);
    } else if (op == "Slice" && !n.attrs.has("starts") && const_input(g, n, 1) && const_input(g, n, 2) &&
               (n.inputs.size() < 4 || n.inputs[3].empty() || const_input(g, n, 3)) &&
               (n.inputs.size() < 5 || n.inputs[4].empty() || const_input(g, n, 4))) {
      n.attrs.set("starts", cinput(g, n, 1).to_i64());
      n.attrs.set("ends", cinput(g, n, 2).to_i64());
      if (const_input(g, n, 3)) n.attrs.set("axes", cinput(g, n, 3).to_i64());
      if (const_input(g, n, 4)) n.attrs.set("steps", cinput(g, n, 4).to_i64());
      truncate_inputs(n, 1);
    } else if (op == "Resize") {
      if (const_input(g, n, 2) && cinput(g, n, 2).numel() > 0) n.attrs.set("kestrel_scales", cinput(g, n, 2).to_f32());
      n.attrs.set("kestrel_sizes", g.value(n.outputs[0]).shape);
      truncate_inputs(n, 1);
    } else if (op == "Clip" && n.inputs.size() > 1) {
      if (const_input(g, n, 1)) n.attrs.set("min", scalar_input(g, n, 1, "min"));
      if (const_input(g, n, 2)) n.attrs.set("max", scalar_input(g, n, 2, "max"));
      if ((n.inputs.size() < 2 || n.inputs[1].empty() || const_input(g, n, 1)) &&
          (n.inputs.size() < 3 || n.inputs[2].empty() || const_input(g, n, 2)))
        truncate_inputs(n, 1);
    } else if (op == "Pad" && const_input(g, n, 1) && (n.inputs.size() < 3 || n.inputs[2].empty() || const_input(g, n, 2))) {
      n.attrs.set("pads", cinput(g, n, 1).to_i64());
      if (const_input(g, n, 2)) n.attrs.set("value", scalar_input(g, n, 2, "constant value"));
      truncate_inputs(n, 1);
    }
  }
  g.prune_values();
}

}  // namespace kestrel::passes
