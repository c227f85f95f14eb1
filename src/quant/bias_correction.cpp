// Empirical bias correction (an option: --bias-correct-images): per output channel of every INT8 conv,
// the mean shift its own quantization (int8 input codes and weights) gives its pre-activation output,
// on the input the INT8 simulation feeds it over the calibration images, is added to the conv's bias,
// so the GPU runs the corrected model unchanged. Rounding a channel's weights shifts its output by
// dW . E[x], which is not zero (SiLU outputs have a positive mean), and clipping shifts it too.
//
// Each conv's own error, not the difference to the FP32 model: correcting every conv at once for the
// FP32 difference counts the upstream's error twice (once in the upstream's own correction, once in
// every conv below it), which diverged on yolov8n (output error 0.11 -> 0.42 -> 0.64 over two passes).
//
// The mean of a conv's pre-activation output is linear in its input's window sums: summed over output
// positions, conv(x)[m] = sum_{c,i,j} W[m,c,i,j] * S[c,i,j], S[c,i,j] the sum of the input values tap
// (i,j) of the window reads (padding reads 0). So the correction needs only S of the float input the
// QuantizeLinear reads and of its int8 codes, never a second convolution. With more than one pass, the
// simulation of a pass runs with the corrections of the one before.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <unordered_map>

#include "quant/int8_conv.h"
#include "quant/internal.h"
#include "util/progress.h"

namespace kestrel::quant {

namespace {
// Adds the window sums S[c, i, j] of x [N, C, H, W] (every image of the batch) under conv geometry p.
template <typename T>
void add_window_sums(const T* x, const detail::ConvGeometry& p, std::vector<double>& s) {
  std::vector<double> colsum(static_cast<size_t>(p.w));
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t c = 0; c < p.c; ++c) {
      const T* plane = x + (n * p.c + c) * p.h * p.w;
      for (int64_t i = 0; i < p.kh; ++i) {
        // Column sums over the rows tap row i reads, then the columns each tap column j reads.
        std::fill(colsum.begin(), colsum.end(), 0.0);
        for (int64_t oy = 0; oy < p.oh; ++oy) {
          const int64_t iy = oy * p.sh - p.ph + i * p.dh;
          if (iy < 0 || iy >= p.h) continue;
          for (int64_t ix = 0; ix < p.w; ++ix) colsum[static_cast<size_t>(ix)] += static_cast<double>(plane[iy * p.w + ix]);
        }
        for (int64_t j = 0; j < p.kw; ++j) {
          double acc = 0;
          for (int64_t ox = 0; ox < p.ow; ++ox) {
            const int64_t ix = ox * p.sw - p.pw + j * p.dw;
            if (ix >= 0 && ix < p.w) acc += colsum[static_cast<size_t>(ix)];
          }
          s[static_cast<size_t>((c * p.kh + i) * p.kw + j)] += acc;
        }
      }
    }
}

// One INT8 conv of the Q/DQ graph and what the correction needs of it.
struct Target {
  size_t node = 0;        // index in the Q/DQ graph
  std::string float_x;    // the float value its QuantizeLinear reads
  std::string codes;      // its QuantizeLinear's output in the Q/DQ graph
  detail::ConvGeometry geo{};
  std::vector<float> w;         // FP32 weights [M, C/g, kh, kw]
  std::vector<float> w_deq;     // s_x * s_w[m] * q_w, as the epilogue scales the int8 accumulator
  std::vector<float> bias;      // FP32 bias (zeros when the conv has none)
  std::vector<double> s_float;  // window sums of that float value (this pass)
  std::vector<double> s_codes;  // window sums of the int8 codes (this pass)
  double positions = 0;         // output positions summed over
};

const Node* producer_of(const Graph& g, const std::unordered_map<std::string, size_t>& prod, const std::string& v) {
  auto it = prod.find(v);
  return it == prod.end() ? nullptr : &g.nodes[it->second];
}

// sum over the reduction of weights[m] . S for every output channel, divided by `positions`.
std::vector<double> channel_means(const std::vector<float>& w, const std::vector<double>& s,
                                  const detail::ConvGeometry& p, double positions) {
  std::vector<double> out(static_cast<size_t>(p.m));
  const int64_t k = p.cg() * p.kh * p.kw;
  for (int64_t m = 0; m < p.m; ++m) {
    const int64_t c0 = (m / p.mg()) * p.cg();
    double acc = 0;
    for (int64_t r = 0; r < k; ++r) acc += static_cast<double>(w[static_cast<size_t>(m * k + r)]) * s[static_cast<size_t>(c0 * p.kh * p.kw + r)];
    out[static_cast<size_t>(m)] = acc / positions;
  }
  return out;
}
}  // namespace

std::map<std::string, std::vector<float>> correct_biases(Graph& qdq, const Graph& fp32,
                                                         const std::vector<HostTensor>& inputs, int passes,
                                                         bool progress) {
  if (inputs.empty()) fail("bias correction needs calibration images to measure on");
  if (passes < 1) throw UsageError("bias correction needs at least one pass");
  const auto prod = qdq.producers();
  std::map<std::string, const Node*> float_convs;
  for (const Node& n : fp32.nodes)
    if (n.op == "kestrel.Conv") float_convs[n.name] = &n;
  std::vector<Target> targets;
  for (size_t i = 0; i < qdq.nodes.size(); ++i) {
    const Node& n = qdq.nodes[i];
    if (n.op != "kestrel.Conv" || n.attrs.s(detail::kPrecisionAttr, "") != "int8") continue;
    const Node* xdq = producer_of(qdq, prod, n.inputs.at(0));
    const Node* wdq = producer_of(qdq, prod, n.inputs.at(1));
    auto f = float_convs.find(n.name);
    KESTREL_CHECK(xdq && wdq && xdq->op == "DequantizeLinear" && wdq->op == "DequantizeLinear" && f != float_convs.end(),
                  "bias correction: conv '", n.name, "' is marked int8 but has no Q/DQ or no FP32 counterpart");
    Target t;
    t.node = i;
    const Node* xq = producer_of(qdq, prod, xdq->inputs.at(0));
    KESTREL_CHECK(xq && xq->op == "QuantizeLinear", "bias correction: conv '", n.name, "' has no QuantizeLinear");
    t.float_x = xq->inputs.at(0);
    t.codes = xdq->inputs.at(0);
    const HostTensor& wq = *qdq.value(wdq->inputs.at(0)).constant;
    t.geo = detail::conv_geometry(n, qdq.value(n.inputs[0]).shape, wq.shape(), qdq.value(n.outputs[0]).shape);
    t.w = fp32.value(f->second->inputs.at(1)).constant->to_f32();
    KESTREL_CHECK(t.w.size() == static_cast<size_t>(wq.numel()), "bias correction: conv '", n.name,
                  "' has other weights in the FP32 graph");
    const float s_x = qdq.value(xdq->inputs.at(1)).constant->to_f32().at(0);
    std::vector<float> s_w = qdq.value(wdq->inputs.at(1)).constant->to_f32();
    if (s_w.size() == 1) s_w.assign(static_cast<size_t>(t.geo.m), s_w[0]);
    const int64_t k = t.geo.cg() * t.geo.kh * t.geo.kw;
    t.w_deq.resize(t.w.size());
    for (int64_t m = 0; m < t.geo.m; ++m)
      for (int64_t r = 0; r < k; ++r) {
        const size_t idx = static_cast<size_t>(m * k + r);
        t.w_deq[idx] = s_x * s_w[static_cast<size_t>(m)] * static_cast<float>(wq.data<int8_t>()[idx]);
      }
    const std::string& b = n.inputs.size() > 2 ? n.inputs[2] : std::string();
    t.bias = b.empty() ? std::vector<float>(static_cast<size_t>(t.geo.m), 0.f) : qdq.value(b).constant->to_f32();
    t.s_float.assign(static_cast<size_t>(t.geo.c * t.geo.kh * t.geo.kw), 0.0);
    t.positions = static_cast<double>(inputs.size()) * static_cast<double>(t.geo.n * t.geo.oh * t.geo.ow);
    targets.push_back(std::move(t));
  }
  std::map<std::string, std::vector<float>> corrections;
  if (targets.empty()) return corrections;

  std::optional<util::ProgressBar> bar;
  if (progress) bar.emplace("bias-correct", static_cast<int64_t>(inputs.size()) * passes, "run");
  // Kept per image: every INT8 conv's int8 codes and the float value its QuantizeLinear reads.
  std::vector<std::string> keep;
  auto keep_index = [&](const std::string& v) {
    auto it = std::find(keep.begin(), keep.end(), v);
    if (it != keep.end()) return static_cast<size_t>(it - keep.begin());
    keep.push_back(v);
    return keep.size() - 1;
  };
  std::vector<std::pair<size_t, size_t>> slots;  // per target: (codes, float input or SIZE_MAX: graph input)
  for (auto& t : targets) {
    const bool is_input = std::find(qdq.inputs.begin(), qdq.inputs.end(), t.float_x) != qdq.inputs.end();
    slots.emplace_back(keep_index(t.codes), is_input ? SIZE_MAX : keep_index(t.float_x));
  }
  for (int pass = 0; pass < passes; ++pass) {
    for (auto& t : targets) {
      t.s_codes.assign(t.s_float.size(), 0.0);
      t.s_float.assign(t.s_float.size(), 0.0);
    }
    {
      const Simulator sim(qdq);
      for (const HostTensor& in : inputs) {
        std::vector<HostTensor> kept;
        sim.run({in}, keep, &kept);
        for (size_t k = 0; k < targets.size(); ++k) {
          Target& t = targets[k];
          const HostTensor& x = slots[k].second == SIZE_MAX ? in : kept[slots[k].second];
          KESTREL_CHECK(x.dtype() == DType::F32 && kept[slots[k].first].dtype() == DType::I8,
                        "bias correction: unexpected tensor types at conv '", qdq.nodes[t.node].name, "'");
          add_window_sums(x.data<float>(), t.geo, t.s_float);
          add_window_sums(kept[slots[k].first].data<int8_t>(), t.geo, t.s_codes);
        }
        if (bar) bar->advance();
      }
    }
    // bias' = bias + E[FP32 pre-activation] - E[INT8 pre-activation without the bias difference].
    for (auto& t : targets) {
      const std::vector<double> want = channel_means(t.w, t.s_float, t.geo, t.positions);
      const std::vector<double> got = channel_means(t.w_deq, t.s_codes, t.geo, t.positions);
      std::vector<float> delta(want.size()), corrected(want.size());
      for (size_t m = 0; m < want.size(); ++m) {
        delta[m] = static_cast<float>(want[m] - got[m]);
        corrected[m] = t.bias[m] + delta[m];
      }
      Node& n = qdq.nodes[t.node];
      if (n.inputs.size() < 3) n.inputs.resize(3);
      const std::string base = n.inputs[2].empty() ? n.name + "_bias" : n.inputs[2];
      const std::string name = corrections.count(n.name) ? n.inputs[2] : detail::unique_value_name(qdq, base + "_corrected");
      Value v;
      v.name = name;
      v.dtype = DType::F32;
      v.shape = {t.geo.m};
      v.shape_known = true;
      v.constant = HostTensor::from_f32({t.geo.m}, corrected);
      if (qdq.has_value(name)) qdq.value(name) = std::move(v);
      else qdq.add_value(std::move(v));
      n.inputs[2] = name;
      corrections[n.name] = std::move(delta);
    }
  }
  if (bar) bar->finish();
  qdq.prune_values();
  return corrections;
}

}  // namespace kestrel::quant
