// The Q/DQ rewrite: explicit quantization in the graph itself. Q/DQ pairs rather than a fused int8
// op because that is the portable form (TensorRT, ONNX Runtime and our own importer read it), the CPU
// backend runs it as-is (fake quantization), and the GPU lowering can fuse each pair into its conv.
#include <set>

#include "quant/internal.h"

namespace kestrel::quant::detail {

std::string unique_value_name(const Graph& g, const std::string& base) {
  if (!g.has_value(base)) return base;
  for (int i = 1;; ++i) {
    std::string name = base + "_" + std::to_string(i);
    if (!g.has_value(name)) return name;
  }
}

namespace {
std::string constant(Graph& g, const std::string& base, HostTensor t) {
  Value v;
  v.name = unique_value_name(g, base);
  v.dtype = t.dtype();
  v.shape = t.shape();
  v.shape_known = true;
  v.constant = std::move(t);
  return g.add_value(std::move(v)).name;
}

std::string activation(Graph& g, const std::string& base) {
  Value v;
  v.name = unique_value_name(g, base);
  return g.add_value(std::move(v)).name;
}

HostTensor int8_zeros(Shape shape) {
  HostTensor t(DType::I8, std::move(shape));
  std::fill(t.data<int8_t>(), t.data<int8_t>() + t.numel(), int8_t{0});
  return t;
}

// Builds the Q/DQ nodes of one graph, sharing one pair per quantized tensor and one DQ per weight.
class QdqBuilder {
 public:
  explicit QdqBuilder(Graph& g) : g_(g) {
    for (auto& n : g.nodes) node_names_.insert(n.name);
  }

  // Q/DQ of activation x with scale s; returns the dequantized value. New nodes go to `out`.
  std::string activation_pair(const std::string& x, float s, std::vector<Node>& out) {
    auto it = act_.find(x);
    if (it != act_.end()) {
      KESTREL_CHECK(it->second.second == s, "tensor '", x, "' quantized with two scales");
      return it->second.first;
    }
    const std::string scale = constant(g_, x + "_scale", HostTensor::scalar_f32(s));
    const std::string zp = constant(g_, x + "_zero_point", int8_zeros({}));
    const std::string q = activation(g_, x + "_quantized");
    const std::string dq = activation(g_, x + "_dequantized");
    out.push_back(make("QuantizeLinear", x + "_QuantizeLinear", {x, scale, zp}, q, {}));
    out.push_back(make("DequantizeLinear", x + "_DequantizeLinear", {q, scale, zp}, dq, {}));
    act_[x] = {dq, s};
    return dq;
  }

  // DQ of weight w (given already quantized): int8 constant, per-channel scales, axis 0.
  std::string weight_dq(const std::string& w, const QuantizedWeights& qw, std::vector<Node>& out) {
    auto it = weights_.find(w);
    if (it != weights_.end()) return it->second;
    const int64_t m = static_cast<int64_t>(qw.scales.size());
    const std::string q = constant(g_, w + "_quantized", qw.q);
    const std::string scale = constant(g_, w + "_scale", HostTensor::from_f32({m}, qw.scales));
    const std::string zp = constant(g_, w + "_zero_point", int8_zeros({m}));
    const std::string dq = activation(g_, w + "_dequantized");
    Attributes a;
    a.set("axis", int64_t{0});
    out.push_back(make("DequantizeLinear", w + "_DequantizeLinear", {q, scale, zp}, dq, a));
    weights_[w] = dq;
    return dq;
  }

 private:
  Node make(const std::string& op, const std::string& base, std::vector<std::string> inputs, const std::string& output,
            Attributes attrs) {
    Node n;
    n.op = op;
    n.name = base;
    for (int i = 1; node_names_.count(n.name); ++i) n.name = base + "_" + std::to_string(i);
    node_names_.insert(n.name);
    n.inputs = std::move(inputs);
    n.outputs = {output};
    n.attrs = std::move(attrs);
    return n;
  }

  Graph& g_;
  std::set<std::string> node_names_;
  std::map<std::string, std::pair<std::string, float>> act_;  // x -> (dequantized, scale)
  std::map<std::string, std::string> weights_;                 // w -> dequantized
};
}  // namespace

void rewrite_qdq(Graph& g, const Decisions& d, const std::map<std::string, float>& calibrated,
                 LayerPrecision float_precision) {
  const std::map<std::string, float> scales = unify_scale_groups(g, calibrated);
  QdqBuilder qdq(g);
  std::vector<Node> nodes;
  nodes.reserve(g.nodes.size() * 2);
  for (Node& n : g.nodes) {
    auto it = d.find(n.name);
    KESTREL_CHECK(it != d.end(), "quantize: no precision decided for node '", n.name, "'");
    const Decision& dec = it->second;
    n.attrs.set(kPrecisionAttr, std::string(precision_name(dec.precision)));
    n.attrs.set(kReasonAttr, dec.reason);
    if (dec.precision == LayerPrecision::Int8) {
      KESTREL_CHECK(n.op == "kestrel.Conv", "node '", n.name, "' (", n.op, ") has no INT8 implementation");
      const std::string x = n.inputs.at(0), w = n.inputs.at(1);
      auto s = scales.find(x);
      if (s == scales.end()) fail("no calibration scale for tensor '", x, "' (input of conv '", n.name, "')");
      const Value& wv = g.value(w);
      KESTREL_CHECK(wv.is_constant() && wv.constant->dtype() == DType::F32 && wv.constant->rank() == 4, "conv '",
                    n.name, "': INT8 needs constant float32 4-D weights");
      n.inputs[0] = qdq.activation_pair(x, s->second, nodes);
      n.inputs[1] = qdq.weight_dq(w, quantize_weights(*wv.constant), nodes);
      // The residual too, where it has a scale (it is nearly always another INT8 conv's input): then
      // the tensor it comes from can stay int8 in the engine, and the conv adds its dequantized codes.
      if (n.inputs.size() > 3 && !n.inputs[3].empty())
        if (auto r = scales.find(n.inputs[3]); r != scales.end()) n.inputs[3] = qdq.activation_pair(n.inputs[3], r->second, nodes);
      n.attrs.set(kOutputPrecisionAttr, std::string(precision_name(float_precision)));
    } else {
      n.attrs.erase(kOutputPrecisionAttr);
    }
    nodes.push_back(std::move(n));
  }
  g.nodes = std::move(nodes);
  g.prune_values();
  g.infer_shapes();
}

}  // namespace kestrel::quant::detail

namespace kestrel::quant {

void apply_to_plain_graph(Graph& plain, const Graph& q) {
  const auto prod = q.producers();
  auto producer = [&](const std::string& v) -> const Node* {
    auto it = prod.find(v);
    return it == prod.end() ? nullptr : &q.nodes[it->second];
  };
  std::map<std::string, const Node*> convs;
  for (const Node& n : q.nodes)
    if (n.op == "kestrel.Conv" || n.op == "Conv") convs[n.name] = &n;
  // Nodes the fused graph absorbed (kestrel_fused "op:name") inherit the fused node's precision.
  std::map<std::string, const Node*> absorbed;
  for (const Node& n : q.nodes) {
    auto it = n.attrs.all().find("kestrel_fused");
    if (it == n.attrs.all().end()) continue;
    for (auto& entry : std::get<std::vector<std::string>>(it->second)) absorbed[entry.substr(entry.find(':') + 1)] = &n;
  }
  std::vector<Node> nodes;
  std::map<std::string, std::string> act_dq;  // plain tensor -> its dequantized value
  std::set<std::string> names;
  for (auto& n : plain.nodes) names.insert(n.name);
  auto fresh_node = [&](const std::string& base) {
    std::string name = base;
    for (int i = 1; names.count(name); ++i) name = base + "_" + std::to_string(i);
    names.insert(name);
    return name;
  };
  auto copy_constant = [&](const std::string& v) {  // a Q/DQ parameter of q, copied into plain
    const std::string name = detail::unique_value_name(plain, v);
    Value c = q.value(v);
    c.name = name;
    plain.add_value(std::move(c));
    return name;
  };
  // Plain value x through a Q/DQ pair with the parameters of q's QuantizeLinear `xq` (one per value).
  auto dequantized = [&](const std::string& x, const Node& xq) {
    if (auto it = act_dq.find(x); it != act_dq.end()) return it->second;
    const std::string scale = copy_constant(xq.inputs.at(1)), zp = copy_constant(xq.inputs.at(2));
    const std::string qv = detail::unique_value_name(plain, x + "_quantized");
    plain.add_value(Value{qv, DType::I8, {}, false, std::nullopt});
    const std::string dqv = detail::unique_value_name(plain, x + "_dequantized");
    plain.add_value(Value{dqv, DType::F32, {}, false, std::nullopt});
    nodes.push_back(Node{fresh_node(x + "_QuantizeLinear"), "QuantizeLinear", {x, scale, zp}, {qv}, {}});
    nodes.push_back(Node{fresh_node(x + "_DequantizeLinear"), "DequantizeLinear", {qv, scale, zp}, {dqv}, {}});
    act_dq[x] = dqv;
    return dqv;
  };
  for (Node& n : plain.nodes) {
    const Node* src = nullptr;
    if (auto it = convs.find(n.name); it != convs.end()) src = it->second;
    else if (auto it2 = absorbed.find(n.name); it2 != absorbed.end()) src = it2->second;
    if (src) {
      // A node the fused graph absorbed (a conv's activation, the decode's ops) runs inside that op.
      const bool itself = src->name == n.name;
      n.attrs.set(detail::kPrecisionAttr, src->attrs.s(detail::kPrecisionAttr, "fp32"));
      n.attrs.set(detail::kReasonAttr, itself ? src->attrs.s(detail::kReasonAttr, "")
                                              : "fused into " + src->op + " '" + src->name + "'");
    }
    const bool int8 = n.op == "Conv" && src && src->attrs.s(detail::kPrecisionAttr, "") == "int8";
    // The residual Add an INT8 conv absorbed reads the residual through the conv's residual Q/DQ.
    if (n.op == "Add" && src && src->name != n.name && src->inputs.size() > 3 && !src->inputs[3].empty()) {
      const Node* rdq = producer(src->inputs[3]);
      const Node* rq = rdq && rdq->op == "DequantizeLinear" ? producer(rdq->inputs.at(0)) : nullptr;
      if (rq && rq->op == "QuantizeLinear")
        for (std::string& in : n.inputs)
          if (in == rq->inputs.at(0)) in = dequantized(in, *rq);
    }
    if (int8) {
      const Node* xdq = producer(src->inputs.at(0));
      const Node* xq = xdq ? producer(xdq->inputs.at(0)) : nullptr;
      const Node* wdq = producer(src->inputs.at(1));
      KESTREL_CHECK(xdq && xq && wdq && xdq->op == "DequantizeLinear" && xq->op == "QuantizeLinear" &&
                        wdq->op == "DequantizeLinear",
                    "conv '", src->name, "' is marked int8 but has no Q/DQ");
      const std::string& x = n.inputs.at(0);
      KESTREL_CHECK(x == xq->inputs.at(0), "conv '", n.name, "': the plain graph reads '", x,
                    "' where the quantized one reads '", xq->inputs.at(0), "'");
      const HostTensor& wq = *q.value(wdq->inputs.at(0)).constant;
      KESTREL_CHECK(plain.value(n.inputs.at(1)).shape == wq.shape(), "conv '", n.name,
                    "': weights differ between the plain and the quantized graph");
      const std::string x_dq = dequantized(x, *xq);
      const std::string wname = copy_constant(wdq->inputs.at(0));
      const std::string ws = copy_constant(wdq->inputs.at(1)), wz = copy_constant(wdq->inputs.at(2));
      const std::string wdqv = detail::unique_value_name(plain, n.inputs[1] + "_dequantized");
      plain.add_value(Value{wdqv, DType::F32, {}, false, std::nullopt});
      Attributes axis;
      axis.set("axis", int64_t{0});
      nodes.push_back(Node{fresh_node(n.inputs[1] + "_DequantizeLinear"), "DequantizeLinear", {wname, ws, wz}, {wdqv}, axis});
      n.inputs[0] = x_dq;
      n.inputs[1] = wdqv;
      // A bias the quantization corrected (correct_biases) travels with the weights.
      if (src->inputs.size() > 2 && !src->inputs[2].empty()) {
        const std::vector<float> b = q.value(src->inputs[2]).constant->to_f32();
        if (n.inputs.size() < 3) n.inputs.resize(3);
        const bool same = !n.inputs[2].empty() && plain.value(n.inputs[2]).is_constant() &&
                          plain.value(n.inputs[2]).constant->to_f32() == b;
        if (!same) n.inputs[2] = copy_constant(src->inputs[2]);
      }
    }
    nodes.push_back(std::move(n));
  }
  plain.nodes = std::move(nodes);
  plain.prune_values();
  plain.infer_shapes();
}

const char* const kPrecisionMetadataKey = "kestrel_layer_precision";

std::string encode_precisions(const Graph& g) {
  std::string out;
  for (const Node& n : g.nodes) {
    if (!n.attrs.has(detail::kPrecisionAttr)) continue;
    if (n.op != "kestrel.Conv" && n.op != "kestrel.DetectV8" && n.op != "kestrel.DetectV5") continue;
    out += n.name + "=" + n.attrs.s(detail::kPrecisionAttr) + "|" + n.attrs.s(detail::kReasonAttr, "") + "\n";
  }
  return out;
}

}  // namespace kestrel::quant
