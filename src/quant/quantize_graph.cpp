// quantize_graph: decide (policy, rules, automatic search), then rewrite. The report lists every
// conv and detect layer with its precision and reason, which `kestrel quantize` prints.
#include <cstdio>
#include <optional>
#include <sstream>

#include "quant/internal.h"

namespace kestrel::quant {

QuantReport quantize_graph(Graph& g, const QuantOptions& o) {
  if (o.float_precision == LayerPrecision::Int8) throw UsageError("the float precision must be fp16 or fp32");
  quantizable_tensors(g);  // rejects an unoptimized graph with a clear message
  detail::Decisions d = detail::initial_decisions(g, o);
  QuantReport report;
  if (o.automatic.enabled) detail::search_precisions(g, d, o, report);
  std::optional<Graph> fp32;
  if (o.bias_correction.enabled) fp32 = g;
  detail::rewrite_qdq(g, d, o.activation_scales, o.float_precision);
  if (fp32) {
    report.bias_corrected = static_cast<int>(
        correct_biases(g, *fp32, o.bias_correction.inputs, o.bias_correction.passes, o.bias_correction.progress).size());
    report.bias_images = static_cast<int>(o.bias_correction.inputs.size());
  }
  for (const Node& n : g.nodes) {
    if (n.op != "kestrel.Conv" && n.op != "kestrel.DetectV8" && n.op != "kestrel.DetectV5") continue;
    const detail::Decision& dec = d.at(n.name);
    LayerDecision l{n.name, n.op, dec.precision, dec.reason, dec.sensitivity, 0.f};
    if (n.op == "kestrel.Conv") {
      if (dec.precision == LayerPrecision::Int8) {
        ++report.int8;
        // inputs[0] is now the dequantized value; its scale is the DQ's.
        for (const Node& p : g.nodes)
          if (p.op == "DequantizeLinear" && p.outputs[0] == n.inputs[0])
            l.input_scale = g.value(p.inputs[1]).constant->to_f32()[0];
      } else if (dec.precision == LayerPrecision::FP16) {
        ++report.fp16;
      } else {
        ++report.fp32;
      }
    }
    report.layers.push_back(std::move(l));
  }
  return report;
}

std::string QuantReport::summary() const {
  std::ostringstream os;
  os << "convolutions: " << int8 << " int8, " << fp16 << " fp16, " << fp32 << " fp32";
  if (auto_error >= 0) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "; auto: output error %.2e (all int8: %.2e)", auto_error, auto_error_all_int8);
    os << buf;
  }
  if (auto_agreement >= 0) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "; auto: agreement with FP32 %.4f (all int8: %.4f)", auto_agreement,
                  auto_agreement_all_int8);
    os << buf;
  }
  if (bias_corrected > 0) os << "; bias correction: " << bias_corrected << " convs on " << bias_images << " images";
  os << "\n";
  for (const LayerDecision& l : layers)
    if (l.precision != LayerPrecision::Int8)
      os << "  " << precision_name(l.precision) << "  " << l.node << "  (" << l.reason << ")\n";
  return os.str();
}

}  // namespace kestrel::quant
