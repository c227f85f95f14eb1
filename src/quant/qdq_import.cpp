// Reading a Q/DQ ONNX model. The importer folds every all-constant node, so a weight's
// DequantizeLinear arrives as a float constant (exactly q * s) and its scales are gone from the graph.
// They are still in the file: this reader notes the scales of every weight DQ, imports and optimizes
// as usual, then puts the DQ back in front of the conv, recovering the int8 codes as rint(w / s) --
// exact, since w is q * s rounded once -- and checking that they reproduce w bit for bit.
#include <onnx/onnx_pb.h>

#include <cmath>
#include <optional>
#include <set>

#include "backend/cpu/kernels.h"
#include "kestrel/onnx.h"
#include "kestrel/passes.h"
#include "onnx/tensor_proto.h"
#include "quant/internal.h"
#include "util/file_io.h"

namespace kestrel::quant {

namespace {
struct WeightDq {
  std::string node;
  HostTensor scale;
  std::optional<HostTensor> zero_point;
  int64_t axis = 1;
};

// DequantizeLinear nodes whose input is constant (weights), by output name, with their parameters.
std::map<std::string, WeightDq> weight_dqs(const onnx::ModelProto& m) {
  std::map<std::string, const onnx::TensorProto*> consts;
  for (auto& t : m.graph().initializer()) consts[t.name()] = &t;
  std::set<std::string> constant(
      [&] {
        std::set<std::string> s;
        for (auto& [k, v] : consts) s.insert(k);
        return s;
      }());
  std::map<std::string, WeightDq> out;
  for (auto& n : m.graph().node()) {
    if (n.op_type() == "Constant") {
      for (auto& a : n.attribute())
        if (a.name() == "value" && n.output_size() == 1) consts[n.output(0)] = &a.t();
    }
    bool all_const = n.input_size() > 0;
    for (auto& i : n.input()) all_const = all_const && (i.empty() || constant.count(i) || consts.count(i));
    if (n.op_type() == "Constant" || all_const)
      for (auto& o : n.output()) constant.insert(o);
    // Every constant scale in the file is checked, also those of nodes the importer folds away.
    if ((n.op_type() == "QuantizeLinear" || n.op_type() == "DequantizeLinear") && n.input_size() >= 2 &&
        consts.count(n.input(1)))
      detail::check_scales(n.op_type() + " node '" + n.name() + "'",
                           onnx_import::to_host_tensor(*consts[n.input(1)]).to_f32());
    if (n.op_type() != "DequantizeLinear" || n.input_size() < 2 || !constant.count(n.input(0))) continue;
    if (!consts.count(n.input(1))) continue;  // a computed scale: nothing to restore from
    WeightDq w;
    w.node = n.name();
    w.scale = onnx_import::to_host_tensor(*consts[n.input(1)]);
    if (n.input_size() > 2 && !n.input(2).empty() && consts.count(n.input(2)))
      w.zero_point = onnx_import::to_host_tensor(*consts[n.input(2)]);
    for (auto& a : n.attribute())
      if (a.name() == "axis") w.axis = a.i();
    out[n.output(0)] = std::move(w);
  }
  return out;
}

// Replaces the folded constant `name` by DequantizeLinear(codes, scale, zero point).
void restore(Graph& g, const std::string& name, const WeightDq& dq) {
  Value& v = g.value(name);
  const HostTensor w = *v.constant;
  const std::string where = "weights '" + name + "' (DequantizeLinear '" + dq.node + "')";
  KESTREL_CHECK(w.dtype() == DType::F32 && w.rank() >= 1, where, ": not float32");
  const auto scale = dq.scale.to_f32();
  const auto zp = dq.zero_point ? dq.zero_point->to_i64() : std::vector<int64_t>(scale.size(), 0);
  KESTREL_CHECK(scale.size() == zp.size(), where, ": scale and zero point sizes differ");
  int64_t inner = 1, extent = 1;
  if (scale.size() > 1) {
    const int64_t axis = dq.axis < 0 ? dq.axis + static_cast<int64_t>(w.rank()) : dq.axis;
    KESTREL_CHECK(axis >= 0 && axis < static_cast<int64_t>(w.rank()) && w.dim(static_cast<size_t>(axis)) ==
                      static_cast<int64_t>(scale.size()), where, ": ", scale.size(), " scales do not fit its shape");
    extent = w.dim(static_cast<size_t>(axis));
    for (size_t d = static_cast<size_t>(axis) + 1; d < w.rank(); ++d) inner *= w.dim(d);
  }
  if (!dq.zero_point || dq.zero_point->dtype() != DType::I8)
    fail(where, " is uint8: only symmetric int8 (zero point 0) is supported");
  HostTensor codes(DType::I8, w.shape());
  const float* pw = w.data<float>();
  for (int64_t i = 0; i < w.numel(); ++i) {
    const size_t k = static_cast<size_t>(scale.size() > 1 ? (i / inner) % extent : 0);
    const float q = std::nearbyint(pw[i] / scale[k]) + static_cast<float>(zp[k]);
    // Bit-exact, as the folding computed it: (q - zp) * scale in float.
    if (q < -128 || q > 127 || static_cast<float>(static_cast<int64_t>(q) - zp[k]) * scale[k] != pw[i])
      fail("cannot recover the int8 codes of ", where, ": element ", i, " is not a multiple of its scale");
    codes.data<int8_t>()[i] = static_cast<int8_t>(q);
  }
  auto add = [&](const std::string& base, HostTensor t) {
    Value c;
    c.name = detail::unique_value_name(g, base);
    c.dtype = t.dtype();
    c.shape = t.shape();
    c.shape_known = true;
    c.constant = std::move(t);
    return g.add_value(std::move(c)).name;
  };
  Node n;
  n.op = "DequantizeLinear";
  n.name = dq.node.empty() ? name + "_DequantizeLinear" : dq.node;
  n.inputs = {add(name + "_quantized", std::move(codes)), add(name + "_scale", dq.scale)};
  if (dq.zero_point) n.inputs.push_back(add(name + "_zero_point", *dq.zero_point));
  if (scale.size() > 1) n.attrs.set("axis", dq.axis);
  n.outputs = {name};
  v.constant.reset();
  g.nodes.insert(g.nodes.begin(), std::move(n));
}

// node -> (precision, reason) as `kestrel quantize` recorded them.
std::map<std::string, std::pair<std::string, std::string>> recorded_precisions(const Graph& g) {
  std::map<std::string, std::pair<std::string, std::string>> out;
  auto it = g.metadata.find(kPrecisionMetadataKey);
  if (it == g.metadata.end()) return out;
  size_t start = 0;
  const std::string& s = it->second;
  while (start < s.size()) {
    size_t end = s.find('\n', start);
    if (end == std::string::npos) end = s.size();
    const std::string line = s.substr(start, end - start);
    start = end + 1;
    const size_t bar = line.find('|');
    const size_t eq = bar == std::string::npos ? std::string::npos : line.rfind('=', bar);
    if (eq == std::string::npos) continue;
    out[line.substr(0, eq)] = {line.substr(eq + 1, bar - eq - 1), line.substr(bar + 1)};
  }
  return out;
}
}  // namespace

bool has_qdq(const Graph& g) {
  for (const Node& n : g.nodes)
    if (detail::is_qdq(n)) return true;
  return false;
}

Graph load_qdq_onnx_bytes(const std::string& bytes, LayerPrecision float_precision, const std::string& source,
                          int64_t batch, int64_t imgsz) {
  if (float_precision == LayerPrecision::Int8) throw UsageError("the float precision must be fp16 or fp32");
  onnx::ModelProto m;
  std::map<std::string, WeightDq> dqs;
  if (m.ParseFromString(bytes)) dqs = weight_dqs(m);  // else the importer reports the error
  ImportOptions io;
  io.batch = batch;
  io.imgsz = imgsz;
  Graph g = import_onnx_bytes(bytes.data(), bytes.size(), io, source);
  passes::optimize(g);
  for (auto& [name, dq] : dqs) {
    const Value* v = g.find(name);
    if (v && v->is_constant()) restore(g, name, dq);
  }
  g.toposort();
  g.infer_shapes();

  const auto prod = g.producers();
  auto produced_by = [&](const std::string& v, const char* op) {
    auto it = prod.find(v);
    return it != prod.end() && g.nodes[it->second].op == op;
  };
  const auto recorded = recorded_precisions(g);
  const std::string fp = precision_name(float_precision);
  bool quantized_weights_here = false;
  for (Node& n : g.nodes) {
    if (detail::is_qdq(n)) continue;
    std::string prec = fp, reason = "imported: no int8 kernel";
    if (n.op == "kestrel.Conv") {
      const bool x_q = produced_by(n.inputs.at(0), "DequantizeLinear");
      prec = x_q ? "int8" : fp;
      reason = x_q ? "imported Q/DQ" : "imported: no Q/DQ on this conv";
      if (x_q && !produced_by(n.inputs.at(1), "DequantizeLinear") && g.value(n.inputs.at(1)).is_constant()) {
        // Q/DQ on the input only (or weights a pass rewrote, e.g. BatchNorm folding): quantize the
        // weights here, per output channel, as Kestrel's own quantizer would.
        quantized_weights_here = true;
        reason = "imported Q/DQ; weights quantized per channel by Kestrel";
      }
    }
    if (auto r = recorded.find(n.name); r != recorded.end()) {
      prec = r->second.first;
      reason = r->second.second;
    }
    n.attrs.set(detail::kPrecisionAttr, prec);
    n.attrs.set(detail::kReasonAttr, reason);
    if (prec == "int8") n.attrs.set(detail::kOutputPrecisionAttr, fp);
  }
  if (quantized_weights_here) {
    // Their input pair already exists; only the weight DQ is added.
    for (Node& n : g.nodes) {
      if (n.op != "kestrel.Conv" || n.attrs.s(detail::kPrecisionAttr) != "int8" ||
          produced_by(n.inputs.at(1), "DequantizeLinear"))
        continue;
      const QuantizedWeights qw = quantize_weights(*g.value(n.inputs[1]).constant);
      WeightDq dq;
      dq.scale = HostTensor::from_f32({static_cast<int64_t>(qw.scales.size())}, qw.scales);
      HostTensor zp(DType::I8, {static_cast<int64_t>(qw.scales.size())});
      std::fill(zp.data<int8_t>(), zp.data<int8_t>() + zp.numel(), int8_t{0});
      dq.zero_point = zp;
      dq.axis = 0;
      // Give the conv its own copy of the (possibly shared) float weights, then restore() it.
      const std::string w = detail::unique_value_name(g, n.inputs[1] + "_int8");
      Value c = g.value(n.inputs[1]);
      c.name = w;
      // The codes must reproduce the weights bit for bit: use the fake-quantized values.
      HostTensor fq(DType::F32, qw.q.shape());
      const int64_t per = qw.q.numel() / qw.q.dim(0);
      for (int64_t i = 0; i < fq.numel(); ++i)
        fq.data<float>()[i] = static_cast<float>(qw.q.data<int8_t>()[i]) * qw.scales[static_cast<size_t>(i / per)];
      c.constant = fq;
      g.add_value(std::move(c));
      n.inputs[1] = w;
      restore(g, w, dq);
    }
    g.toposort();
    g.infer_shapes();
  }
  g.metadata.erase(kPrecisionMetadataKey);
  check_qdq_placement(g);
  return g;
}

Graph load_qdq_onnx(const std::string& path, LayerPrecision float_precision, int64_t batch, int64_t imgsz) {
  const std::vector<char> bytes = util::read_file(path);
  return load_qdq_onnx_bytes(std::string(bytes.begin(), bytes.end()), float_precision, path, batch, imgsz);
}

}  // namespace kestrel::quant
