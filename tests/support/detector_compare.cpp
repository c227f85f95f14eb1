// Part-by-part comparison of detector outputs (see detector_compare.h).
#include "detector_compare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "kestrel/error.h"

namespace kestrel::test {

namespace {

// Accumulates one part: element i of channel c.
class PartAccumulator {
 public:
  explicit PartAccumulator(int64_t channels) : sum_(channels, 0.0), n_(channels, 0) {}
  void add(int64_t channel, int64_t flat, float got, float ref) {
    ++e_.count;
    const double d = static_cast<double>(got) - ref;
    if (!std::isfinite(got) || !std::isfinite(ref)) {
      nonfinite_ = true;
      if (e_.worst < 0 || std::isfinite(e_.max_abs)) e_.worst = flat;
      e_.max_abs = INFINITY;
      return;
    }
    num_ += d * d;
    den_ += static_cast<double>(ref) * ref;
    if (std::fabs(d) > e_.max_abs) {
      e_.max_abs = std::fabs(d);
      e_.worst = flat;
    }
    sum_[channel] += d;
    ++n_[channel];
  }
  PartError result() const {
    PartError e = e_;
    if (nonfinite_) {
      e.rel_l2 = e.bias = INFINITY;
      return e;
    }
    e.rel_l2 = den_ > 0 ? std::sqrt(num_ / den_) : (num_ > 0 ? INFINITY : 0.0);
    for (size_t c = 0; c < sum_.size(); ++c)
      if (n_[c]) e.bias = std::max(e.bias, std::fabs(sum_[c] / n_[c]));
    return e;
  }

 private:
  PartError e_;
  double num_ = 0, den_ = 0;
  bool nonfinite_ = false;
  std::vector<double> sum_;
  std::vector<int64_t> n_;
};

double iou(const yolo::Box& a, const yolo::Box& b) {
  const double w = std::max(0.0, static_cast<double>(std::min(a.x2, b.x2)) - std::max(a.x1, b.x1));
  const double h = std::max(0.0, static_cast<double>(std::min(a.y2, b.y2)) - std::max(a.y1, b.y1));
  const double inter = w * h;
  const double ua = (static_cast<double>(a.x2) - a.x1) * (static_cast<double>(a.y2) - a.y1) +
                    (static_cast<double>(b.x2) - b.x1) * (static_cast<double>(b.y2) - b.y1) - inter;
  return ua > 0 ? inter / ua : 0.0;
}

std::string box_str(const char* side, const yolo::Box& b) {
  char s[160];
  std::snprintf(s, sizeof s, "%s det class %d score %.4f at (%.1f, %.1f, %.1f, %.1f)", side, b.cls, b.score, b.x1, b.y1,
                b.x2, b.y2);
  return s;
}

// Pairs each detection of `a` with the same-class detection of `b` of highest IoU (>= 0.5), one to one.
void pair_detections(const std::vector<yolo::Box>& a, const std::vector<yolo::Box>& b, const char* a_name,
                     float conf, DetectionError& e, bool record_pairs) {
  std::vector<bool> used(b.size(), false);
  for (const yolo::Box& x : a) {
    int best = -1;
    double best_iou = 0.5;
    for (size_t j = 0; j < b.size(); ++j) {
      if (used[j] || b[j].cls != x.cls) continue;
      const double v = iou(x, b[j]);
      if (v >= best_iou) {
        best_iou = v;
        best = static_cast<int>(j);
      }
    }
    if (best < 0) {
      e.unpaired.push_back({box_str(a_name, x), static_cast<double>(x.score) - conf});
      continue;
    }
    used[best] = true;
    if (!record_pairs) continue;
    const yolo::Box& y = b[best];
    ++e.matched;
    e.max_box_px = std::max({e.max_box_px, std::fabs(static_cast<double>(x.x1) - y.x1), std::fabs(static_cast<double>(x.y1) - y.y1),
                             std::fabs(static_cast<double>(x.x2) - y.x2), std::fabs(static_cast<double>(x.y2) - y.y2)});
    e.max_score = std::max(e.max_score, std::fabs(static_cast<double>(x.score) - y.score));
  }
}

}  // namespace

std::string HeadError::describe() const {
  double margin = 0;  // the most confident detection without a partner, above the threshold
  for (const Unpaired& u : dets.unpaired) margin = std::max(margin, u.margin);
  char s[700];
  std::snprintf(s, sizeof s,
                "boxes rel.L2 %.3g max-abs %.3g px bias %.3g px | scores rel.L2 %.3g max-abs %.3g bias %.3g%s | "
                "detections %d ref / %d got, %d matched, %zu without a partner (up to %.3g above conf), corners within %.3g px, "
                "scores within %.3g",
                boxes.rel_l2, boxes.max_abs, boxes.bias, scores.rel_l2, scores.max_abs, scores.bias,
                kind == yolo::HeadKind::V5
                    ? (" | objectness rel.L2 " + std::to_string(objectness.rel_l2) + " max-abs " +
                       std::to_string(objectness.max_abs) + " bias " + std::to_string(objectness.bias))
                          .c_str()
                    : "",
                dets.ref, dets.got, dets.matched, dets.unpaired.size(), margin, dets.max_box_px, dets.max_score);
  return s;
}

HeadError compare_head(const float* got, const float* ref, const std::vector<int64_t>& shape, yolo::NmsOptions nms) {
  HeadError e;
  e.kind = yolo::detect_head(shape);
  const int64_t batch = shape[0];
  const bool v8 = e.kind == yolo::HeadKind::V8;
  const int64_t channels = v8 ? shape[1] : shape[2], anchors = v8 ? shape[2] : shape[1];
  const int64_t first_score = v8 ? 4 : 5, per_image = channels * anchors;
  PartAccumulator boxes(4), scores(channels - first_score), objectness(1);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t a = 0; a < anchors; ++a) {
        const int64_t i = b * per_image + (v8 ? c * anchors + a : a * channels + c);
        if (c < 4) boxes.add(c, i, got[i], ref[i]);
        else if (c >= first_score) scores.add(c - first_score, i, got[i], ref[i]);
        else objectness.add(0, i, got[i], ref[i]);
      }
  e.boxes = boxes.result();
  e.scores = scores.result();
  if (!v8) e.objectness = objectness.result();

  // Detections, image by image; within() tells a borderline partnerless detection from a missing one.
  const std::vector<std::vector<yolo::Box>> dr = yolo::postprocess(ref, shape, e.kind, nms);
  const std::vector<std::vector<yolo::Box>> dg = yolo::postprocess(got, shape, e.kind, nms);
  for (int64_t b = 0; b < batch; ++b) {
    e.dets.ref += static_cast<int>(dr[b].size());
    e.dets.got += static_cast<int>(dg[b].size());
    pair_detections(dr[b], dg[b], "ref", nms.conf, e.dets, true);
    pair_detections(dg[b], dr[b], "got", nms.conf, e.dets, false);
  }
  return e;
}

::testing::AssertionResult within(const HeadError& e, const HeadBounds& b) {
  std::ostringstream bad;
  auto part = [&](const char* name, const PartError& p, const PartBound& pb) {
    if (!p.count) return;
    if (!(p.rel_l2 <= pb.rel_l2)) bad << "; " << name << " rel.L2 " << p.rel_l2 << " > " << pb.rel_l2;
    if (!(p.max_abs <= pb.max_abs))
      bad << "; " << name << " max-abs " << p.max_abs << " > " << pb.max_abs << " (element " << p.worst << ")";
    if (!(p.bias <= pb.bias)) bad << "; " << name << " bias " << p.bias << " > " << pb.bias;
  };
  part("boxes", e.boxes, b.boxes);
  part("scores", e.scores, b.scores);
  part("objectness", e.objectness, b.objectness);
  int missing = 0;
  std::string first;
  for (const Unpaired& u : e.dets.unpaired)
    if (!(u.margin <= b.det_score) && !missing++) first = u.what;
  if (missing) bad << "; " << missing << " detection(s) without a partner, e.g. " << first;
  if (!(e.dets.max_box_px <= b.det_box_px)) bad << "; detection corners differ by " << e.dets.max_box_px << " px > " << b.det_box_px;
  if (!(e.dets.max_score <= b.det_score)) bad << "; detection scores differ by " << e.dets.max_score << " > " << b.det_score;
  if (e.dets.ref == 0) bad << "; the reference has no detection (nothing to compare)";
  if (bad.str().empty()) return ::testing::AssertionSuccess() << e.describe();
  return ::testing::AssertionFailure() << bad.str().substr(2) << "\n  " << e.describe();
}

// FP32: summation order only. Measured: the CPU backend vs ONNX Runtime's golden outputs on coco 139
// and 37777 (tests/onnx/golden_test.cpp), worst of yolov8n / yolov5n / yolo11n: boxes rel. L2 1.1e-6,
// max-abs 0.016 px, bias 4.1e-5 px; scores rel. L2 6.8e-6, max-abs 7.5e-6; detections' corners within
// 1.2e-3 px, scores within 1.7e-6. The GPU FP32 engines' whole-output relative L2 vs golden is 2e-7 to
// 4e-7 (bench/RESULTS.md).
HeadBounds bounds_fp32() {
  HeadBounds b;
  b.boxes = {1e-5, 0.1, 2e-3};
  b.scores = {1e-4, 1e-4, 1e-5};
  b.objectness = {1e-4, 1e-4, 1e-5};
  b.det_box_px = 0.02;
  b.det_score = 1e-4;
  return b;
}

// FP16: measured on the CPU simulation of FP16 storage in every layer, the detection decode included
// (tests/quant/fp16_bounds_test.cpp, coco 139; the GPU keeps the decode in FP32, so it is closer):
//   yolov8n  boxes rel. L2 4.5e-4, max-abs 4.8 px, bias 0.048 px; scores 2.6e-3, 4.0e-3; corners 0.16 px
//   yolov5n  boxes 2.9e-4, 2.9 px, 0.011 px; scores 2.7e-3, 7.5e-3; objectness 1.7e-3; corners 0.12 px
//   yolo11n  boxes 2.5e-3, 39 px, 0.097 px; scores 3.2e-3, 4.5e-3; corners 0.22 px, scores 1.9e-3
// and the GPU FP16 engines' whole-output relative L2 vs golden is 1.7e-4 to 4.6e-4 (bench/RESULTS.md).
HeadBounds bounds_fp16() {
  HeadBounds b;
  b.boxes = {4e-3, 64.0, 0.25};
  b.scores = {2e-2, 0.05, 1e-3};
  b.objectness = {2e-2, 0.05, 1e-3};
  b.det_box_px = 2.0;
  b.det_score = 0.02;
  return b;
}

}  // namespace kestrel::test
