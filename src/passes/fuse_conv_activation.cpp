// Conv + activation -> kestrel.Conv. An engine then applies the activation in the conv's epilogue
// instead of writing the pre-activation tensor to memory and reading it back. Every other eligible
// Conv is lowered to kestrel.Conv (activation none) as well, so backends implement one convolution
// op and later passes (fuse_residual_add) find a single form.
#include <algorithm>

#include "ir/op_registry.h"
#include "kestrel/passes.h"
#include "passes/fusion_util.h"

namespace kestrel::passes {

namespace {
using detail::has_input;
using detail::is_constant;

// 2-D convolution with constant float weights (and bias): what the fused op and the engines support.
bool convertible(const Graph& g, const Node& n) {
  if (n.op != "Conv" || n.outputs.size() != 1 || !has_input(n, 0) || !has_input(n, 1)) return false;
  if (n.inputs.size() > 3) return false;
  if (!is_constant(g, n.inputs[1]) || (has_input(n, 2) && !is_constant(g, n.inputs[2]))) return false;
  const Value& x = g.value(n.inputs[0]);
  const HostTensor& w = *g.value(n.inputs[1]).constant;
  return x.shape_known && x.shape.size() == 4 && x.dtype == DType::F32 && w.dtype() == DType::F32 && w.rank() == 4;
}

// kestrel.Conv always spells out its geometry (kernel_shape, strides, dilations, 4 pads, group), with
// auto_pad resolved, so engines read one form whatever the exporter omitted.
void explicit_geometry(const Graph& g, Node& n) {
  const Shape& x = g.value(n.inputs[0]).shape;
  const Shape& w = g.value(n.inputs[1]).shape;
  const std::vector<int64_t> kernel = n.attrs.ints("kernel_shape", std::vector<int64_t>{w[2], w[3]});
  const PoolGeometry geo = window_geometry(n, {x[2], x[3]}, kernel, false);
  n.attrs.set("kernel_shape", kernel);
  n.attrs.set("strides", geo.strides);
  n.attrs.set("dilations", geo.dilations);
  n.attrs.set("pads", geo.pads);
  n.attrs.set("group", n.attrs.i("group", 1));
  n.attrs.erase("auto_pad");
}

struct Activation {
  std::string name;
  float alpha = 0.f, beta = 0.f;
};

// The activation a single-reader node applies to its input 0, if it is one kestrel.Conv supports.
bool unary_activation(const Node& n, Activation& a) {
  if (n.inputs.size() != 1 || n.outputs.size() != 1) return false;
  if (n.op == "Relu") a = {"relu"};
  else if (n.op == "LeakyRelu") a = {"leaky_relu", n.attrs.f("alpha", 0.01f)};
  else if (n.op == "Sigmoid") a = {"sigmoid"};
  else if (n.op == "HardSwish") a = {"hard_swish"};
  else if (n.op == "HardSigmoid") a = {"hard_sigmoid", n.attrs.f("alpha", 0.2f), n.attrs.f("beta", 0.5f)};
  else if (n.op == "Tanh") a = {"tanh"};
  else return false;
  return true;
}
}  // namespace

int fuse_conv_activation(Graph& g, int* activations_fused) {
  detail::Uses uses(g);
  std::vector<bool> dead(g.nodes.size(), false);
  int rewritten = 0, fused = 0;
  for (size_t ci = 0; ci < g.nodes.size(); ++ci) {
    if (!convertible(g, g.nodes[ci])) continue;
    const std::string out = g.nodes[ci].outputs[0];
    // The nodes the conv absorbs (in graph order) and what they compute.
    std::vector<size_t> absorbed;
    Activation act{"none"};
    const auto& readers = uses.readers(out);
    // Fusing hides the pre-activation tensor, so it must not be a graph output or read by anyone else.
    if (!uses.is_graph_output(out) && readers.size() == 1) {
      if (unary_activation(g.nodes[readers[0]], act)) absorbed = {readers[0]};
    } else if (!uses.is_graph_output(out) && readers.size() == 2 && readers[0] != readers[1]) {
      // SiLU as PyTorch exports it: Sigmoid(x) and Mul(x, sigmoid), the sigmoid read by the Mul only.
      size_t s = readers[0], m = readers[1];
      if (g.nodes[s].op != "Sigmoid") std::swap(s, m);
      const Node& sig = g.nodes[s];
      const Node& mul = g.nodes[m];
      if (sig.op == "Sigmoid" && mul.op == "Mul" && mul.inputs.size() == 2 && sig.outputs.size() == 1 &&
          uses.only_read_by(sig.outputs[0], m) &&
          ((mul.inputs[0] == out && mul.inputs[1] == sig.outputs[0]) ||
           (mul.inputs[1] == out && mul.inputs[0] == sig.outputs[0]))) {
        act = {"silu"};
        absorbed = {std::min(s, m), std::max(s, m)};
      }
    }
    Node& conv = g.nodes[ci];
    detail::seed_fused(conv);
    explicit_geometry(g, conv);
    conv.op = "kestrel.Conv";
    conv.attrs.set("activation", act.name);
    conv.attrs.set("alpha", act.alpha);
    conv.attrs.set("beta", act.beta);
    if (!absorbed.empty()) {
      // The conv now produces what the last absorbed node produced; readers of that value are
      // unaffected, and the conv already precedes them in topological order.
      const Node& last = g.nodes[absorbed.back()];
      conv.outputs[0] = last.outputs[0];
      uses.set_producer(last.outputs[0], ci);
      for (size_t k : absorbed) {
        detail::record_fused(conv, g.nodes[k]);
        dead[k] = true;
      }
      ++fused;
    }
    ++rewritten;
  }
  if (activations_fused) *activations_fused = fused;
  return detail::apply_rewrites(g, dead, rewritten);
}

}  // namespace kestrel::passes
