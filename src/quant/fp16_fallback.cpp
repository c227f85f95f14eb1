// INT8 convs of a Q/DQ graph turned back into FP16 convs (quant::run_in_fp16): the graph rewrite behind
// the builder's per-layer precision choice by time.
#include "backend/cpu/kernel.h"
#include "kestrel/passes.h"
#include "quant/internal.h"

namespace kestrel::quant {

namespace {
// The float weights a weight DequantizeLinear defines, evaluated by the CPU backend's kernel (the ONNX
// arithmetic: per-axis or per-tensor scale and zero point).
HostTensor dequantized_weights(const Graph& g, const Node& dq) {
  std::vector<const HostTensor*> args;
  for (const std::string& in : dq.inputs) {
    const Value* v = in.empty() ? nullptr : &g.value(in);
    KESTREL_CHECK(!v || v->is_constant(), "DequantizeLinear '", dq.name, "': the weights are not constant");
    args.push_back(v ? &*v->constant : nullptr);
  }
  return cpu::eval_node(g, dq, args).at(0);
}
}  // namespace

void run_in_fp16(Graph& g, const std::map<std::string, std::string>& conv_reasons) {
  if (conv_reasons.empty()) return;
  const auto prod = g.producers();
  auto producer = [&](const std::string& v, const char* op) -> const Node* {
    auto it = prod.find(v);
    return it != prod.end() && g.nodes[it->second].op == op ? &g.nodes[it->second] : nullptr;
  };
  // The float tensor an activation DequantizeLinear's QuantizeLinear reads; `v` itself otherwise.
  auto float_source = [&](const std::string& v) {
    const Node* dq = producer(v, "DequantizeLinear");
    if (!dq) return v;
    const Node* q = producer(dq->inputs.at(0), "QuantizeLinear");
    KESTREL_CHECK(q, "DequantizeLinear '", dq->name, "' of an activation does not read a QuantizeLinear");
    return q->inputs.at(0);
  };
  std::map<std::string, std::string> weights;  // weight DQ output -> its float constant
  size_t found = 0;
  for (Node& n : g.nodes) {
    auto r = conv_reasons.find(n.name);
    if (r == conv_reasons.end()) continue;
    ++found;
    KESTREL_CHECK(n.op == "kestrel.Conv" && n.attrs.s(detail::kPrecisionAttr, "") == "int8", "run_in_fp16: '", n.name,
                  "' is not an INT8 conv");
    n.inputs.at(0) = float_source(n.inputs[0]);
    if (n.inputs.size() > 3 && !n.inputs[3].empty()) n.inputs[3] = float_source(n.inputs[3]);
    const std::string wdq = n.inputs.at(1);
    auto w = weights.find(wdq);
    if (w == weights.end()) {
      const Node* dq = producer(wdq, "DequantizeLinear");
      KESTREL_CHECK(dq, "INT8 conv '", n.name, "': its weights come from no DequantizeLinear");
      Value v;
      v.name = detail::unique_value_name(g, wdq + "_fp");
      v.constant = dequantized_weights(g, *dq);
      v.dtype = DType::F32;
      v.shape = v.constant->shape();
      v.shape_known = true;
      w = weights.emplace(wdq, g.add_value(std::move(v)).name).first;
    }
    n.inputs[1] = w->second;
    n.attrs.set(detail::kPrecisionAttr, std::string("fp16"));
    n.attrs.set(detail::kReasonAttr, r->second);
    n.attrs.erase(detail::kOutputPrecisionAttr);
  }
  KESTREL_CHECK(found == conv_reasons.size(), "run_in_fp16: ", conv_reasons.size() - found, " of the named convs are not in the graph");
  passes::eliminate_dead_nodes(g);  // the Q/DQ nodes only these convs read
  g.infer_shapes();
}

}  // namespace kestrel::quant
