// Would another activation code hold INT8's agreement with FP32 better? CPU experiments before any
// engine change: the default policy's Q/DQ graph run as fake quantization (CpuExecutor), once with the
// per-tensor symmetric codes the engine uses and once with the code under study; the detection
// agreement of both with FP32 (quant::output_agreement) on the first N images of a folder, and the
// change with its paired bootstrap interval.
//   asym     each activation whose values have a known lower bound (SiLU outputs >= -0.2785, the image
//            >= 0, data movement and residual sums of those) gets an asymmetric code over [bound, amax]
//            (scale (amax - bound) / 255 and a zero point) instead of [-amax, amax].
//   channel  each activation gets one scale per channel, s_c = s x (amax_c / amax)^alpha, amax_c the
//            channel's largest magnitude on the calibration images (at most the tensor's amax). An engine
//            folds s_c / s into the INT8 consumer's weights (which are then quantized per output channel
//            as before), so the conv still reads one-scale codes; the producer's epilogue quantizes with
//            a scale per channel. alpha < 1 leaves part of the spread in the activation (SmoothQuant's
//            migration strength): folding a small s_c into the weights coarsens their codes.
//            "unfolded" instead of an alpha: per-channel codes with the weights as the engine has them
//            (what a conv taking a scale per input channel would do; no INT8 tensor-core conv does);
//            "max": one scale per tensor again, from the largest magnitude on the calibration images
//            instead of the cache's percentile (nothing those images hold is clipped); "max:TEXT" only
//            for the tensors whose name holds TEXT.
//   split    where the loss comes from: only the activations quantized (weights in FP32), and only the
//            weights quantized (activations in FP32), each against both quantized.
// amax from the calibration cache as the engine uses it (127 x scale).
//   activation_codes asym MODEL.onnx CALIBRATION_CACHE IMAGES_DIR N
//   activation_codes split MODEL.onnx CALIBRATION_CACHE IMAGES_DIR N
//   activation_codes channel MODEL.onnx CALIBRATION_CACHE IMAGES_DIR N CALIBRATION_IMAGES_DIR K ALPHA|unfolded|max...
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "kestrel/agreement.h"
#include "kestrel/cpu_backend.h"
#include "kestrel/onnx.h"
#include "kestrel/passes.h"
#include "kestrel/quant.h"
#include "kestrel/yolo.h"

namespace {
using namespace kestrel;

constexpr double kSiluMin = -0.27846454;  // min of x * sigmoid(x), at x = -1.2785
constexpr double kUnbounded = -std::numeric_limits<double>::infinity();

// A lower bound of every value of the fused FP32 graph that has one (kUnbounded where none is known).
std::map<std::string, double> lower_bounds(const Graph& g) {
  std::map<std::string, double> lb;
  auto of = [&](const std::string& v) {
    auto it = lb.find(v);
    return it == lb.end() ? kUnbounded : it->second;
  };
  for (const std::string& in : g.inputs) lb[in] = 0.0;  // letterboxed image in [0, 1]
  for (const Node& n : g.nodes) {
    double b = kUnbounded;
    if (n.op == "kestrel.Conv" && n.attrs.s("activation", "") == "silu") {
      b = kSiluMin;
      if (n.inputs.size() > 3 && !n.inputs[3].empty()) b += of(n.inputs[3]);  // the residual after it
    } else if (!quant::moved_values(g, n).empty()) {
      b = std::numeric_limits<double>::infinity();
      for (const std::string& in : n.inputs)
        if (!in.empty() && !g.value(in).is_constant()) b = std::min(b, of(in));
    } else if (n.op == "Add" && n.inputs.size() == 2) {
      b = of(n.inputs[0]) + of(n.inputs[1]);
    }
    for (const std::string& o : n.outputs)
      if (!o.empty()) lb[o] = b;
  }
  return lb;
}

// Each activation QuantizeLinear of a tensor with a lower bound: scale and zero point of the code over
// [bound, amax]. Q and DQ of a pair share their scale and zero-point constants (quantize_graph).
int make_asymmetric(Graph& q, const std::map<std::string, double>& lb) {
  int changed = 0;
  for (const Node& n : q.nodes) {
    if (n.op != "QuantizeLinear") continue;
    auto b = lb.find(n.inputs[0]);
    if (b == lb.end() || !std::isfinite(b->second)) {
      std::printf("  stays symmetric (no lower bound known): %s\n", n.inputs[0].c_str());
      continue;
    }
    // Copies of a graph share their constants' storage: new tensors, not writes into the old ones.
    HostTensor scale = q.value(n.inputs[1]).constant->clone();
    HostTensor zero = q.value(n.inputs[2]).constant->clone();
    const double s = scale.data<float>()[0], amax = 127.0 * s, lo = std::min(b->second, 0.0);
    const double s2 = (amax - lo) / 255.0;
    const double z = std::clamp(std::nearbyint(-128.0 - lo / s2), -128.0, 127.0);
    scale.data<float>()[0] = static_cast<float>(s2);
    zero.data<int8_t>()[0] = static_cast<int8_t>(z);
    q.value(n.inputs[1]).constant = scale;
    q.value(n.inputs[2]).constant = zero;
    ++changed;
  }
  return changed;
}

std::vector<HostTensor> run_all(const Graph& g, const std::vector<HostTensor>& inputs) {
  CpuExecutor ex(g);
  std::vector<HostTensor> out;
  for (const HostTensor& x : inputs) out.push_back(ex.run({x})[0]);
  return out;
}

// The largest magnitude of each channel (axis 1) of every named value of the FP32 graph, over the inputs.
std::map<std::string, std::vector<float>> channel_amax(const Graph& g, const std::vector<std::string>& names,
                                                       const std::vector<HostTensor>& inputs) {
  Graph probe = g;
  probe.outputs = names;
  CpuExecutor ex(probe);
  std::map<std::string, std::vector<float>> amax;
  for (const HostTensor& x : inputs) {
    const std::vector<HostTensor> outs = ex.run({x});
    for (size_t k = 0; k < names.size(); ++k) {
      const HostTensor& t = outs[k];
      const int64_t n = t.dim(0), c = t.dim(1), inner = t.numel() / (n * c);
      std::vector<float>& m = amax[names[k]];
      m.resize(static_cast<size_t>(c), 0.f);
      const float* p = t.data<float>();
      for (int64_t b = 0; b < n; ++b)
        for (int64_t ch = 0; ch < c; ++ch)
          for (int64_t i = 0; i < inner; ++i)
            m[static_cast<size_t>(ch)] = std::max(m[static_cast<size_t>(ch)], std::fabs(p[(b * c + ch) * inner + i]));
    }
  }
  return amax;
}

// Every activation Q/DQ pair of q gets per-channel scales s x r_c, r_c = (min(amax_c, amax) / amax)^alpha
// (amax = 127 s), and every INT8 conv that reads the pair as its input reads, instead of its DQ'd
// weights, what an engine folding r_c into them would compute with: the weights times r_c, quantized per
// output channel, divided by r_c again. A residual read through the pair needs no fold (the epilogue
// dequantizes it per channel). Returns the number of pairs changed.
int make_per_channel(Graph& q, const Graph& fp32, const std::map<std::string, std::vector<float>>& amax, double alpha,
                     bool fold = true) {
  std::map<std::string, std::vector<float>> ratio;  // dequantized value -> r_c
  int changed = 0;
  for (Node& n : q.nodes) {
    if (n.op != "QuantizeLinear") continue;
    const auto a = amax.find(n.inputs[0]);
    if (a == amax.end()) continue;
    const float s = q.value(n.inputs[1]).constant->to_f32()[0], tensor_amax = 127.f * s;
    std::vector<float> r(a->second.size()), scales(a->second.size());
    for (size_t c = 0; c < r.size(); ++c) {
      // A channel that never left zero on the calibration images keeps a small but valid scale.
      const double frac = std::clamp(static_cast<double>(a->second[c]) / tensor_amax, 1e-3, 1.0);
      r[c] = static_cast<float>(std::pow(frac, alpha));
      scales[c] = s * r[c];
    }
    HostTensor zero(DType::I8, {static_cast<int64_t>(r.size())});
    std::fill(zero.data<int8_t>(), zero.data<int8_t>() + zero.numel(), int8_t{0});
    q.value(n.inputs[1]).constant = HostTensor::from_f32({static_cast<int64_t>(r.size())}, scales);
    q.value(n.inputs[1]).shape = {static_cast<int64_t>(r.size())};
    q.value(n.inputs[2]).constant = zero;
    q.value(n.inputs[2]).shape = {static_cast<int64_t>(r.size())};
    n.attrs.set("axis", int64_t{1});
    for (Node& d : q.nodes)
      if (d.op == "DequantizeLinear" && d.inputs[0] == n.outputs[0]) {
        d.attrs.set("axis", int64_t{1});
        ratio[d.outputs[0]] = r;
      }
    ++changed;
  }
  std::map<std::string, const Node*> fp32_convs;
  for (const Node& n : fp32.nodes) fp32_convs[n.name] = &n;
  for (Node& n : q.nodes) {
    if (!fold || n.op != "kestrel.Conv") continue;
    const auto r = ratio.find(n.inputs[0]);
    if (r == ratio.end()) continue;
    const HostTensor& w = *fp32.value(fp32_convs.at(n.name)->inputs[1]).constant;
    const int64_t m = w.dim(0), cg = w.dim(1), k = w.numel() / (m * cg), group = n.attrs.i("group", 1), mg = m / group;
    HostTensor folded = w.clone();
    float* p = folded.data<float>();
    auto in_channel = [&](int64_t o, int64_t c) { return static_cast<size_t>((o / mg) * cg + c); };
    for (int64_t o = 0; o < m; ++o)
      for (int64_t c = 0; c < cg; ++c)
        for (int64_t i = 0; i < k; ++i) p[(o * cg + c) * k + i] *= r->second[in_channel(o, c)];
    const quant::QuantizedWeights qw = quant::quantize_weights(folded);
    const int8_t* codes = qw.q.data<int8_t>();
    for (int64_t o = 0; o < m; ++o)
      for (int64_t c = 0; c < cg; ++c)
        for (int64_t i = 0; i < k; ++i) {
          const int64_t e = (o * cg + c) * k + i;
          p[e] = static_cast<float>(codes[e]) * qw.scales[static_cast<size_t>(o)] / r->second[in_channel(o, c)];
        }
    Value v;
    v.name = n.name + "_folded_weights";
    v.dtype = DType::F32;
    v.shape = folded.shape();
    v.shape_known = true;
    v.constant = std::move(folded);
    n.inputs[1] = q.add_value(std::move(v)).name;
  }
  q.prune_values();
  q.infer_shapes();
  return changed;
}

// q with one side of the quantization undone: every conv reads its FP32 weights (keep_activations) or
// the values its activation Q/DQ pairs would quantize (otherwise).
Graph one_side(const Graph& q, const Graph& fp32, bool keep_activations) {
  Graph out = q;
  std::map<std::string, std::string> source;  // DQ output -> the value its Q read
  std::map<std::string, std::string> q_input;
  for (const Node& n : q.nodes)
    if (n.op == "QuantizeLinear") q_input[n.outputs[0]] = n.inputs[0];
  for (const Node& n : q.nodes)
    if (n.op == "DequantizeLinear")
      if (auto it = q_input.find(n.inputs[0]); it != q_input.end()) source[n.outputs[0]] = it->second;
  std::map<std::string, const Node*> fp32_convs;
  for (const Node& n : fp32.nodes) fp32_convs[n.name] = &n;
  for (Node& n : out.nodes) {
    if (n.op != "kestrel.Conv") continue;
    if (keep_activations) {
      const std::string& w = fp32_convs.at(n.name)->inputs[1];
      if (!out.has_value(w)) out.add_value(fp32.value(w));
      n.inputs[1] = w;
    } else {
      for (size_t i : {size_t{0}, size_t{3}})
        if (i < n.inputs.size())
          if (auto it = source.find(n.inputs[i]); it != source.end()) n.inputs[i] = it->second;
    }
  }
  out.prune_values();
  out.infer_shapes();
  return out;
}

// Agreement is the mAP of each against FP32's boxes as ground truth: two engines scored on the same
// resampled images give their difference a paired interval.
struct Scorer {
  std::vector<int64_t> ids;
  std::vector<eval::Category> cats;
  std::vector<eval::GtBox> truth;
  Scorer(const std::vector<HostTensor>& ref) {
    truth = eval::agreement_ground_truth(quant::output_detections(ref, eval::kAgreementReferenceConf));
    for (size_t i = 0; i < ref.size(); ++i) ids.push_back(static_cast<int64_t>(i) + 1);
    const Shape& head = ref[0].shape();
    const int64_t nc = yolo::detect_head(head) == yolo::HeadKind::V5 ? head[2] - 5 : head[1] - 4;
    for (int64_t k = 0; k < nc; ++k) cats.push_back({static_cast<int>(k), "class" + std::to_string(k)});
  }
  void compare(const char* a_name, const std::vector<HostTensor>& a, const char* b_name, const std::vector<HostTensor>& b) const {
    const eval::MapDelta d = eval::map_delta(ids, cats, truth, quant::output_detections(a, eval::kAgreementCandidateConf),
                                             quant::output_detections(b, eval::kAgreementCandidateConf));
    std::printf("agreement with FP32: %s %.4f, %s %.4f, change %+.4f [95 %% interval %+.4f, %+.4f]\n", a_name, d.reference,
                b_name, d.candidate, d.delta, d.ci.lo, d.ci.hi);
    std::fflush(stdout);
  }
};
}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (!(((mode == "asym" || mode == "split") && argc == 6) || (mode == "channel" && argc >= 9))) {
    std::fprintf(stderr,
                 "usage: activation_codes asym|split MODEL.onnx CALIBRATION_CACHE IMAGES_DIR N\n"
                 "       activation_codes channel MODEL.onnx CALIBRATION_CACHE IMAGES_DIR N CALIBRATION_IMAGES_DIR K "
                 "ALPHA|unfolded|max...\n");
    return 2;
  }
  try {
    Graph g = import_onnx(argv[2]);
    passes::optimize(g);
    const quant::CacheFile cache = quant::read_cache(argv[3]);
    quant::CalibOptions folder;  // the library's "first N images of a folder, sorted"
    folder.images = argv[4];
    folder.max_images = std::stoi(argv[5]);
    const std::vector<HostTensor> inputs = quant::load_inputs(g, quant::calibration_images(folder));

    quant::QuantOptions qo;
    qo.activation_scales = cache.scales;
    Graph sym = g;
    quant::quantize_graph(sym, qo);
    int quantizers = 0;
    std::vector<std::string> quantized;
    for (const Node& node : sym.nodes)
      if (node.op == "QuantizeLinear") {
        ++quantizers;
        quantized.push_back(node.inputs[0]);
      }
    const std::vector<HostTensor> ref = run_all(g, inputs);
    const Scorer scorer(ref);
    const std::vector<HostTensor> out_sym = run_all(sym, inputs);

    if (mode == "asym") {
      Graph asym = sym;
      const int changed = make_asymmetric(asym, lower_bounds(g));
      std::printf("%s: %zu images; %d of %d activation codes made asymmetric\n", argv[2], inputs.size(), changed, quantizers);
      scorer.compare("symmetric codes", out_sym, "asymmetric", run_all(asym, inputs));
      return 0;
    }
    if (mode == "split") {
      std::printf("%s: %zu images; %d activation codes\n", argv[2], inputs.size(), quantizers);
      scorer.compare("both quantized", out_sym, "activations only", run_all(one_side(sym, g, true), inputs));
      scorer.compare("both quantized", out_sym, "weights only", run_all(one_side(sym, g, false), inputs));
      return 0;
    }
    quant::CalibOptions calib;
    calib.images = argv[6];
    calib.max_images = std::stoi(argv[7]);
    const auto amax = channel_amax(g, quantized, quant::load_inputs(g, quant::calibration_images(calib)));
    for (int a = 8; a < argc; ++a) {
      const std::string variant = argv[a];
      const bool unfolded = variant == "unfolded";
      Graph per_channel = sym;
      int changed = 0;
      if (variant.rfind("max", 0) == 0) {
        // Each tensor's largest channel magnitude, as every channel's: one scale per tensor, max / 127
        // ("max:TEXT": only the tensors whose name holds TEXT).
        const std::string only = variant.size() > 4 ? variant.substr(4) : "";
        for (Node& n : per_channel.nodes)
          if (n.op == "QuantizeLinear" && n.inputs[0].find(only) != std::string::npos)
            if (auto it = amax.find(n.inputs[0]); it != amax.end()) {
              const float m = *std::max_element(it->second.begin(), it->second.end());
              per_channel.value(n.inputs[1]).constant = HostTensor::scalar_f32(std::max(m, 1e-6f) / 127.f);
              ++changed;
            }
      } else {
        changed = make_per_channel(per_channel, g, amax, unfolded ? 1.0 : std::stod(variant), !unfolded);
      }
      std::printf("%s: %zu images; %d of %d activation codes changed (%s)\n", argv[2], inputs.size(), changed,
                  quantizers, variant.c_str());
      const std::string name = variant.rfind("max", 0) == 0 ? "per-tensor " + variant : "per-channel (" + variant + ")";
      scorer.compare("per-tensor codes", out_sym, name.c_str(), run_all(per_channel, inputs));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "activation_codes: %s\n", e.what());
    return 1;
  }
  return 0;
}
