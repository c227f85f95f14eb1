// Would asymmetric activation codes hold INT8's agreement with FP32 better? A CPU experiment before
// any engine change: the default policy's Q/DQ graph run as fake quantization (CpuExecutor), once with
// the symmetric codes the engine uses and once with each activation whose values have a known lower
// bound (SiLU outputs >= -0.2785, the image >= 0, data movement and residual sums of those) given an
// asymmetric code over [bound, amax] (scale (amax - bound) / 255 and a zero point) instead of
// [-amax, amax]; amax from the calibration cache as the engine uses it (127 x scale). Reports the
// detection agreement of both with FP32 (quant::output_agreement) on the first N images of a folder, and the
// change with its paired bootstrap interval.
//   asym_codes MODEL.onnx CALIBRATION_CACHE IMAGES_DIR [N]
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
}  // namespace

int main(int argc, char** argv) {
  if (argc < 4 || argc > 5) {
    std::fprintf(stderr, "usage: asym_codes MODEL.onnx CALIBRATION_CACHE IMAGES_DIR [N]\n");
    return 2;
  }
  try {
    Graph g = import_onnx(argv[1]);
    passes::optimize(g);
    const quant::CacheFile cache = quant::read_cache(argv[2]);
    quant::CalibOptions folder;  // the library's "first N images of a folder, sorted"
    folder.images = argv[3];
    folder.max_images = argc == 5 ? std::stoi(argv[4]) : 1 << 30;
    const std::vector<HostTensor> inputs = quant::load_inputs(g, quant::calibration_images(folder));

    const std::map<std::string, double> lb = lower_bounds(g);
    quant::QuantOptions qo;
    qo.activation_scales = cache.scales;
    Graph sym = g;
    quant::quantize_graph(sym, qo);
    Graph asym = sym;
    const int changed = make_asymmetric(asym, lb);
    int quantizers = 0;
    for (const Node& node : sym.nodes) quantizers += node.op == "QuantizeLinear";
    std::printf("%s: %zu images; %d of %d activation codes made asymmetric\n", argv[1], inputs.size(), changed, quantizers);

    // Agreement is the mAP of each against FP32's boxes as ground truth: the two scored on the same
    // resampled images give the change a paired interval.
    const std::vector<HostTensor> ref = run_all(g, inputs);
    const std::vector<eval::GtBox> truth =
        eval::agreement_ground_truth(quant::output_detections(ref, eval::kAgreementReferenceConf));
    const auto d_sym = quant::output_detections(run_all(sym, inputs), eval::kAgreementCandidateConf);
    const auto d_asym = quant::output_detections(run_all(asym, inputs), eval::kAgreementCandidateConf);
    std::vector<int64_t> ids;
    for (size_t i = 0; i < inputs.size(); ++i) ids.push_back(static_cast<int64_t>(i) + 1);
    std::vector<eval::Category> cats;
    const Shape& head = ref[0].shape();
    const int64_t nc = yolo::detect_head(head) == yolo::HeadKind::V5 ? head[2] - 5 : head[1] - 4;
    for (int64_t k = 0; k < nc; ++k) cats.push_back({static_cast<int>(k), "class" + std::to_string(k)});
    const eval::MapDelta d = eval::map_delta(ids, cats, truth, d_sym, d_asym);
    std::printf("agreement with FP32: symmetric codes %.4f, asymmetric %.4f, change %+.4f [95 %% interval %+.4f, %+.4f]\n",
                d.reference, d.candidate, d.delta, d.ci.lo, d.ci.hi);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asym_codes: %s\n", e.what());
    return 1;
  }
  return 0;
}
