// Which Q/DQ graphs Kestrel runs. Explicit quantization is only meaningful where an INT8 kernel can
// consume it, so every other placement is refused up front with the node's name -- rather than run
// as silent fake quantization, which would report an INT8 accuracy no engine reproduces.
#include <algorithm>
#include <cmath>
#include <string>

#include "quant/internal.h"

namespace kestrel::quant {

namespace {
const HostTensor& param(const Graph& g, const Node& n, size_t i, const char* what) {
  if (i >= n.inputs.size() || n.inputs[i].empty()) fail(n.op, " node '", n.name, "' has no ", what);
  const Value& v = g.value(n.inputs[i]);
  if (!v.is_constant()) fail(n.op, " node '", n.name, "': its ", what, " must be a constant");
  return *v.constant;
}

// Symmetric int8: the zero point is given, int8, and all zeros (TensorRT's rule as well).
void check_zero_point(const Graph& g, const Node& n) {
  if (n.inputs.size() < 3 || n.inputs[2].empty())
    fail(n.op, " node '", n.name, "' has no zero point, i.e. uint8: only symmetric int8 (zero point 0) is supported");
  const HostTensor& zp = param(g, n, 2, "zero point");
  if (zp.dtype() != DType::I8)
    fail(n.op, " node '", n.name, "' is ", dtype_name(zp.dtype()), ": only symmetric int8 (zero point 0) is supported");
  for (int64_t z : zp.to_i64())
    if (z != 0) fail(n.op, " node '", n.name, "' has zero point ", z, ": only symmetric int8 (zero point 0) is supported");
}

std::string describe(const Node& n) { return n.op + " node '" + n.name + "'"; }
}  // namespace

namespace detail {
void check_scales(const std::string& where, const std::vector<float>& scales) {
  for (size_t i = 0; i < scales.size(); ++i) {
    const float s = scales[i];
    if (std::isnormal(s) && s > 0) continue;
    const char* what = std::isnan(s) ? "NaN" : std::isinf(s) ? "infinite" : s == 0 ? "zero" : s < 0 ? "negative" : "denormal";
    fail(where, " has a ", what, " scale (", s, scales.size() > 1 ? ", channel " + std::to_string(i) : std::string(),
         "): a scale must be a positive normal float");
  }
}
}  // namespace detail

void check_qdq_placement(const Graph& g) {
  const auto prod = g.producers();
  const auto cons = g.consumers();
  auto readers = [&](const std::string& v) {
    auto it = cons.find(v);
    return it == cons.end() ? std::vector<size_t>{} : it->second;
  };
  auto is_output = [&](const std::string& v) { return std::count(g.outputs.begin(), g.outputs.end(), v) != 0; };
  for (const Node& n : g.nodes) {
    if (detail::is_qdq(n)) detail::check_scales(describe(n), param(g, n, 1, "scale").to_f32());
    if (n.op == "QuantizeLinear") {
      check_zero_point(g, n);
      if (param(g, n, 1, "scale").numel() != 1)
        fail(describe(n), " is per-axis: activations must be quantized per tensor");
      if (is_output(n.outputs[0])) fail(describe(n), " is a graph output: a QuantizeLinear needs its DequantizeLinear");
      for (size_t r : readers(n.outputs[0]))
        if (g.nodes[r].op != "DequantizeLinear")
          fail(describe(n), " feeds ", describe(g.nodes[r]),
               ": a QuantizeLinear must be followed by a DequantizeLinear (Q without DQ)");
    } else if (n.op == "DequantizeLinear") {
      check_zero_point(g, n);
      const HostTensor& scale = param(g, n, 1, "scale");
      const std::string& x = n.inputs.at(0);
      auto p = prod.find(x);
      const Node* q = p == prod.end() ? nullptr : &g.nodes[p->second];
      const bool weight = !q && g.value(x).is_constant();
      if (!weight && (!q || q->op != "QuantizeLinear"))
        fail(describe(n), " reads '", x, "', which is neither a QuantizeLinear output nor an int8 constant");
      if (q) {
        const auto sq = param(g, *q, 1, "scale").to_f32(), sd = scale.to_f32();
        if (sq != sd) fail(describe(n), " dequantizes with scale ", sd.at(0), " what ", describe(*q), " quantized with ", sq.at(0));
      } else {
        const HostTensor& w = *g.value(x).constant;
        if (w.dtype() != DType::I8) fail(describe(n), ": weights must be int8, got ", dtype_name(w.dtype()));
        if (scale.numel() != 1 && (n.attrs.i("axis", 1) != 0 || scale.numel() != w.dim(0)))
          fail(describe(n), ": weights must be quantized per output channel (axis 0) or per tensor");
      }
      if (is_output(n.outputs[0])) fail(describe(n), " is a graph output: Kestrel runs INT8 only inside convolutions");
      // Weights: a conv's W. Activations: a conv's X, or the residual R of a conv whose X is quantized
      // too (the INT8 conv adds the dequantized codes in its epilogue).
      auto int8_conv = [&](const Node& c) {
        auto it = c.inputs.empty() ? prod.end() : prod.find(c.inputs[0]);
        return it != prod.end() && g.nodes[it->second].op == "DequantizeLinear";
      };
      for (size_t r : readers(n.outputs[0])) {
        const Node& c = g.nodes[r];
        bool ok = c.op == "kestrel.Conv";
        for (size_t i = 0; ok && i < c.inputs.size(); ++i)
          if (c.inputs[i] == n.outputs[0] && !(weight ? i == 1 : i == 0 || (i == 3 && int8_conv(c)))) ok = false;
        if (!ok)
          fail(describe(n), " feeds ", describe(c), ": Kestrel runs INT8 only in convolutions (Q/DQ may precede a Conv's ",
               weight ? "weights" : "input, or the residual of an INT8 conv", " only)");
      }
    } else if (n.op == "kestrel.Conv") {
      auto producer_op = [&](size_t i) -> std::string {
        if (i >= n.inputs.size() || n.inputs[i].empty()) return "";
        auto it = prod.find(n.inputs[i]);
        return it == prod.end() ? "" : g.nodes[it->second].op;
      };
      const bool x_dq = producer_op(0) == "DequantizeLinear", w_dq = producer_op(1) == "DequantizeLinear";
      if (x_dq != w_dq)
        fail("conv '", n.name, "' has a quantized ", x_dq ? "input but float weights" : "weights but a float input",
             ": an INT8 conv needs Q/DQ on both");
      const std::string prec = n.attrs.s(detail::kPrecisionAttr, x_dq ? "int8" : "fp32");
      if (x_dq != (prec == "int8"))
        fail("conv '", n.name, "' is marked ", prec, " but ", x_dq ? "has" : "has no", " Q/DQ inputs");
    }
  }
}

}  // namespace kestrel::quant
