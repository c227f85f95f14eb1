// INT8 convs of a Q/DQ graph turned back into FP16 convs (quant::run_in_fp16): the graph rewrite behind
// the builder's per-layer precision choice by time.
#include "kestrel/passes.h"
#include "quant/internal.h"

namespace kestrel::quant {

namespace {
// The float weights a weight DequantizeLinear defines: (q - zero point) * scale, per output channel
// (axis 0) or one scale for all.
HostTensor dequantized_weights(const Graph& g, const Node& dq) {
  const Value& qv = g.value(dq.inputs.at(0));
  KESTREL_CHECK(qv.is_constant() && qv.constant->dtype() == DType::I8, "DequantizeLinear '", dq.name,
                "': the weights are not a constant int8 tensor");
  const HostTensor& q = *qv.constant;
  const std::vector<float> scale = g.value(dq.inputs.at(1)).constant->to_f32();
  std::vector<float> zero(scale.size(), 0.f);
  if (dq.inputs.size() > 2 && !dq.inputs[2].empty()) zero = g.value(dq.inputs[2]).constant->to_f32();
  KESTREL_CHECK(dq.attrs.i("axis", 1) == 0 || scale.size() == 1, "DequantizeLinear '", dq.name,
                "': per-channel weight scales must be along axis 0");
  const int64_t channels = q.shape().at(0), per = q.numel() / channels;
  KESTREL_CHECK(scale.size() == 1 || static_cast<int64_t>(scale.size()) == channels, "DequantizeLinear '", dq.name,
                "': ", scale.size(), " scales for ", channels, " output channels");
  std::vector<float> w(static_cast<size_t>(q.numel()));
  const int8_t* qd = q.data<int8_t>();
  for (int64_t m = 0; m < channels; ++m) {
    const size_t c = scale.size() == 1 ? 0 : static_cast<size_t>(m);
    for (int64_t k = 0; k < per; ++k) w[m * per + k] = (static_cast<float>(qd[m * per + k]) - zero[c]) * scale[c];
  }
  return HostTensor::from_f32(q.shape(), std::move(w));
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
