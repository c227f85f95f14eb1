#pragma once
// Comparing a detector's output with a reference, part by part, so that no part can hide behind
// another: one relative L2 over a whole [1, 84, 8400] output is dominated by the box coordinates
// (pixels, hundreds) and cannot see the class scores (probabilities, mostly near 0) -- zeroing every
// class score of yolov8n moves it by only 9.8e-5.
//
// Parts (YOLOv8 / YOLO11 [B, 4 + nc, A]; YOLOv5 [B, A, 5 + nc]):
//   boxes       cx, cy, w, h in input pixels
//   scores      the nc class scores
//   objectness  YOLOv5 only
// Per part: relative L2, the largest absolute difference (one wrong element of 51,200 shows here), and
// the bias -- the largest |mean signed difference| of one channel over all anchors (a box channel moved
// by one pixel everywhere shows here however noisy the rest is: random rounding averages out, a shift
// does not).
// Detections: the prediction-time NMS (conf 0.25, IoU 0.7, best class) on both outputs; every
// detection must have a partner of the same class in the other list (IoU >= 0.5) whose corners lie
// within `det_box_px` pixels and score within `det_score`; only a detection whose score is within
// `det_score` of the confidence threshold may lack a partner (it may fall on either side).
//
// Usage (any test, CPU or GPU):
//   const HeadError e = compare_head(got.data<float>(), ref.data<float>(), got.shape());
//   EXPECT_TRUE(within(e, bounds_fp16_vs_fp32())) ;   // the message names every exceeded bound
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kestrel/yolo.h"

namespace kestrel::test {

struct PartError {
  int64_t count = 0;      // elements compared
  double rel_l2 = 0;      // sqrt(sum (got - ref)^2 / sum ref^2); 0 when both are all zero
  double max_abs = 0;     // max |got - ref| (infinite when got has a non-finite element)
  double bias = 0;        // max over channels of |mean(got - ref)|
  int64_t worst = -1;     // flat index of the largest |got - ref|
};

struct Unpaired {
  std::string what;   // "ref det class 0 score 0.9100 at (x1, y1, x2, y2)"
  double margin = 0;  // its score minus the confidence threshold (small: borderline)
};

struct DetectionError {
  int ref = 0, got = 0;         // detections after NMS
  int matched = 0;
  double max_box_px = 0;        // largest corner difference among matched pairs
  double max_score = 0;         // largest score difference among matched pairs
  std::vector<Unpaired> unpaired;  // detections of either side without a partner
};

struct HeadError {
  yolo::HeadKind kind = yolo::HeadKind::Auto;
  PartError boxes, scores, objectness;  // objectness: YOLOv5 only (count 0 otherwise)
  DetectionError dets;
  std::string describe() const;  // one line with every measure
};

struct PartBound {
  double rel_l2, max_abs, bias;
};

struct HeadBounds {
  PartBound boxes, scores, objectness;
  double det_box_px;  // matched detections: corner difference in pixels
  double det_score;   // matched detections: score difference; also the borderline band around conf
};

// Compares `got` with `ref` (both float32, `shape` [B, C, A] or [B, A, C]); the NMS settings of the
// detection check default to prediction's (conf 0.25, IoU 0.7, best class only).
HeadError compare_head(const float* got, const float* ref, const std::vector<int64_t>& shape,
                       yolo::NmsOptions nms = yolo::NmsOptions::prediction());

// Success when every measure of `e` is within `b`; the failure message names each bound exceeded.
::testing::AssertionResult within(const HeadError& e, const HeadBounds& b);

// ---------------------------------------------------------------------------------------------------
// Bounds, in one place. Each is far above the noise of a correct engine of that precision (measured
// figures in the comments of detector_compare.cpp) and far below what the planted faults of
// tests/yolo/detector_compare_test.cpp produce: zeroed class scores (scores rel. L2 1), every box moved
// by one pixel (boxes bias 1 px, detection corners 1 px), one wrong element (max-abs).

// FP32 against another FP32 implementation (CPU backend or GPU FP32 engine vs ONNX Runtime's golden
// outputs, GPU vs CPU): summation order only.
HeadBounds bounds_fp32();
// FP16 engine against FP32 (golden or CPU): fp16 storage of every activation (unit roundoff 2^-11).
HeadBounds bounds_fp16();

}  // namespace kestrel::test
