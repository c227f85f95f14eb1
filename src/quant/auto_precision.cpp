// --int8-auto: Polygraphy-style precision search. Each INT8 conv's sensitivity is the output error of
// the graph with that conv alone in INT8 (the rest FP32), so layers are ranked by what they cost on
// their own; then the k most sensitive are promoted to FP16, with k bisected (the graph gets closer
// to FP32 as k grows) until the whole mixed graph meets the target: detection agreement with FP32 at
// least the target (the default), or output error at most the target.
#include <algorithm>
#include <cstdio>
#include <optional>

#include "kestrel/cpu_backend.h"
#include "kestrel/yolo.h"
#include "quant/internal.h"
#include "util/progress.h"

namespace kestrel::quant::detail {

namespace {
std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1e", v);
  return buf;
}

class Evaluator {
 public:
  // `evaluations`: how many graphs will be measured (for the progress bar's total).
  Evaluator(const Graph& fp32, const QuantOptions& o, size_t evaluations) : fp32_(fp32), o_(o) {
    CpuExecutor exec(fp32);
    for (auto& in : o.automatic.inputs) refs_.push_back(exec.run({in}).at(0));
    if (o.automatic.progress)
      bar_.emplace("int8-auto", static_cast<int64_t>(evaluations * o.automatic.inputs.size()), "run");
  }
  // The measure over the inputs of the graph quantized as `d`: the agreement of its detections with
  // FP32's, or its mean output error.
  double measure(const Decisions& d, LayerPrecision float_precision) {
    Graph g = fp32_;
    rewrite_qdq(g, d, o_.activation_scales, float_precision);
    Simulator sim(g);
    double sum = 0;
    std::vector<HostTensor> outs;
    for (size_t i = 0; i < refs_.size(); ++i) {
      HostTensor y = sim.run({o_.automatic.inputs[i]}).at(0);
      if (o_.automatic.measure == AutoMeasure::Agreement) outs.push_back(std::move(y));
      else sum += output_error(y, refs_[i]);
      if (bar_) bar_->advance();
    }
    if (o_.automatic.measure == AutoMeasure::Agreement) return output_agreement_at(outs, refs_, kAutoReferenceConf);
    return sum / static_cast<double>(refs_.size());
  }
  const std::vector<HostTensor>& references() const { return refs_; }
  // For each candidate, the error of `base` (all FP32) with that candidate alone in INT8. Image by
  // image: one FP32 run keeps every value, and each candidate's simulation reuses what lies outside
  // the part of the graph its conv influences.
  std::vector<double> sensitivities(const Decisions& base, const std::vector<std::string>& candidates) {
    std::vector<Simulator> sims;
    for (const std::string& c : candidates) {
      Decisions one = base;
      one[c].precision = LayerPrecision::Int8;
      Graph g = fp32_;
      rewrite_qdq(g, one, o_.activation_scales, LayerPrecision::FP32);
      sims.emplace_back(g);
    }
    std::vector<std::string> all;
    for (const Node& n : fp32_.nodes)
      for (auto& out : n.outputs)
        if (!out.empty()) all.push_back(out);
    CpuExecutor exec(fp32_);
    std::vector<double> sum(candidates.size(), 0.0);
    for (size_t i = 0; i < refs_.size(); ++i) {
      std::vector<HostTensor> kept;
      exec.run({o_.automatic.inputs[i]}, all, &kept);
      std::unordered_map<std::string, HostTensor> reference;
      for (size_t k = 0; k < all.size(); ++k) reference.emplace(all[k], std::move(kept[k]));
      for (size_t c = 0; c < sims.size(); ++c) {
        sum[c] += output_error(sims[c].run({o_.automatic.inputs[i]}, reference).at(0), refs_[i]);
        if (bar_) bar_->advance();
      }
    }
    for (double& s : sum) s /= static_cast<double>(refs_.size());
    return sum;
  }
  void finish() {
    if (bar_) bar_->finish();
  }

 private:
  const Graph& fp32_;
  const QuantOptions& o_;
  std::vector<HostTensor> refs_;
  std::optional<util::ProgressBar> bar_;
};
}  // namespace

void search_precisions(const Graph& fp32, Decisions& d, const QuantOptions& o, QuantReport& report) {
  if (o.automatic.inputs.empty()) fail("--int8-auto needs calibration images to measure on");
  const bool agreement = o.automatic.measure == AutoMeasure::Agreement;
  if (!(o.automatic.target > 0)) throw UsageError("the --int8-auto target must be positive");
  if (agreement && o.automatic.target > 1) throw UsageError("the --int8-auto agreement target must lie in (0, 1]");
  std::vector<std::string> candidates;
  for (const Node& n : fp32.nodes) {
    const Decision& x = d.at(n.name);
    if (n.op == "kestrel.Conv" && x.precision == LayerPrecision::Int8 && !x.by_rule) candidates.push_back(n.name);
  }
  size_t bisection = 2;  // k = 0 and k = all, then at most ceil(log2(n)) steps
  for (size_t n = candidates.size(); n > 1; n = (n + 1) / 2) ++bisection;
  Evaluator eval(fp32, o, candidates.size() + bisection);
  if (agreement) {
    const Shape& out = eval.references().at(0).shape();
    try {
      yolo::detect_head(out);
    } catch (const Error&) {
      fail("--int8-auto aims at detection agreement, but the model's output ", shape_str(out),
           " is not a YOLO detection head");
    }
    if (output_agreement_at(eval.references(), eval.references(), kAutoReferenceConf) < 0)
      fail("--int8-auto aims at detection agreement, but the FP32 model finds no object (conf ", kAutoReferenceConf, ") on the ",
           o.automatic.inputs.size(), " calibration images it measures on: use more --auto-images");
  }
  // Sensitivities: one conv in INT8, everything else (decode included) FP32.
  Decisions alone = d;
  for (auto& [name, x] : alone) x = {LayerPrecision::FP32, "sensitivity probe"};
  const std::vector<double> sens = eval.sensitivities(alone, candidates);
  for (size_t i = 0; i < candidates.size(); ++i) d[candidates[i]].sensitivity = sens[i];
  std::stable_sort(candidates.begin(), candidates.end(),
                   [&](const std::string& a, const std::string& b) { return d[a].sensitivity > d[b].sensitivity; });
  // The mixed graph with the k most sensitive candidates promoted to FP16.
  std::map<size_t, double> memo;
  auto with_promoted = [&](size_t k) {
    Decisions m = d;
    for (size_t i = 0; i < k; ++i) m[candidates[i]].precision = LayerPrecision::FP16;
    return m;
  };
  auto value_at = [&](size_t k) {
    auto it = memo.find(k);
    if (it == memo.end()) it = memo.emplace(k, eval.measure(with_promoted(k), o.float_precision)).first;
    return it->second;
  };
  const double target = o.automatic.target;
  auto meets = [&](size_t k) { return agreement ? value_at(k) >= target : value_at(k) <= target; };
  size_t k = 0;
  if (!meets(0)) {
    size_t lo = 0, hi = candidates.size();
    if (meets(hi)) {
      while (hi - lo > 1) {  // invariant: lo misses the target, hi meets it
        const size_t mid = (lo + hi) / 2;
        (meets(mid) ? hi : lo) = mid;
      }
    }
    k = hi;  // when even all-FP16 misses the target, promote them all: the closest we can get
  }
  eval.finish();
  for (size_t i = 0; i < candidates.size(); ++i) {
    Decision& x = d[candidates[i]];
    if (i < k) x = {LayerPrecision::FP16, "auto: sensitivity " + sci(x.sensitivity), false, x.sensitivity};
    else x.reason = "auto: sensitivity " + sci(x.sensitivity) + ", kept int8";
  }
  (agreement ? report.auto_agreement_all_int8 : report.auto_error_all_int8) = value_at(0);
  (agreement ? report.auto_agreement : report.auto_error) = value_at(k);
}

}  // namespace kestrel::quant::detail
