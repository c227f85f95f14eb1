// Head decoding and NMS on hand-built tensors: thresholds, multi-label, YOLOv5 objectness, class
// offsets, ties, max_det / max_nms, torchvision's IoU comparison, and box scaling.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <random>

#include "kestrel/error.h"
#include "kestrel/yolo.h"

using kestrel::yolo::Box;
using kestrel::yolo::HeadKind;
using kestrel::yolo::NmsOptions;

namespace {

// A [1, 4 + nc, A] YOLOv8-style tensor built anchor by anchor.
struct V8Tensor {
  int nc, anchors;
  std::vector<float> data;
  V8Tensor(int nc_, int anchors_) : nc(nc_), anchors(anchors_), data((4 + nc_) * anchors_, 0.f) {}
  void set(int a, std::array<float, 4> xywh, std::vector<float> scores) {
    for (int k = 0; k < 4; ++k) data[k * anchors + a] = xywh[k];
    for (size_t c = 0; c < scores.size(); ++c) data[(4 + c) * anchors + a] = scores[c];
  }
  std::vector<int64_t> shape() const { return {1, 4 + nc, anchors}; }
};

// A [1, A, 5 + nc] YOLOv5-style tensor.
struct V5Tensor {
  int nc, anchors;
  std::vector<float> data;
  V5Tensor(int nc_, int anchors_) : nc(nc_), anchors(anchors_), data((5 + nc_) * anchors_, 0.f) {}
  void set(int a, std::array<float, 4> xywh, float obj, std::vector<float> scores) {
    float* row = &data[a * (5 + nc)];
    for (int k = 0; k < 4; ++k) row[k] = xywh[k];
    row[4] = obj;
    for (size_t c = 0; c < scores.size(); ++c) row[5 + c] = scores[c];
  }
  std::vector<int64_t> shape() const { return {1, anchors, 5 + nc}; }
};

NmsOptions opts(float conf, double iou, bool multi, int max_det = 300) {
  NmsOptions o;
  o.conf = conf;
  o.iou = iou;
  o.multi_label = multi;
  o.max_det = max_det;
  return o;
}

// torchvision.ops.nms over class-offset boxes, written as literally as possible (global pass,
// stable descending sort) to cross-check the per-class shortcut in kestrel's nms().
std::vector<Box> reference_nms(const std::vector<Box>& cand, const NmsOptions& o) {
  std::vector<int> order(cand.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return cand[a].score > cand[b].score; });
  if (order.size() > static_cast<size_t>(o.max_nms)) order.resize(o.max_nms);
  std::vector<char> sup(order.size(), 0);
  std::vector<Box> out;
  auto off = [&](const Box& b, int k) {
    const float c = b.cls * o.max_wh;
    const float v[4] = {b.x1, b.y1, b.x2, b.y2};
    return v[k] + c;
  };
  for (size_t i = 0; i < order.size(); ++i) {
    if (sup[i]) continue;
    const Box& a = cand[order[i]];
    out.push_back(a);
    const float ax1 = off(a, 0), ay1 = off(a, 1), ax2 = off(a, 2), ay2 = off(a, 3);
    const float aa = (ax2 - ax1) * (ay2 - ay1);
    for (size_t j = i + 1; j < order.size(); ++j) {
      if (sup[j]) continue;
      const Box& b = cand[order[j]];
      const float bx1 = off(b, 0), by1 = off(b, 1), bx2 = off(b, 2), by2 = off(b, 3);
      const float ba = (bx2 - bx1) * (by2 - by1);
      const float w = std::max(0.f, std::min(ax2, bx2) - std::max(ax1, bx1));
      const float h = std::max(0.f, std::min(ay2, by2) - std::max(ay1, by1));
      const float inter = w * h;
      if (double(inter / (aa + ba - inter)) > o.iou) sup[j] = 1;
    }
  }
  if (out.size() > static_cast<size_t>(o.max_det)) out.resize(o.max_det);
  return out;
}

}  // namespace

TEST(HeadDecode, DetectsLayoutFromShape) {
  EXPECT_EQ(kestrel::yolo::detect_head({1, 84, 8400}), HeadKind::V8);
  EXPECT_EQ(kestrel::yolo::detect_head({4, 84, 8400}), HeadKind::V8);
  EXPECT_EQ(kestrel::yolo::detect_head({1, 5, 100}), HeadKind::V8);  // one class
  EXPECT_EQ(kestrel::yolo::detect_head({1, 25200, 85}), HeadKind::V5);
  EXPECT_EQ(kestrel::yolo::detect_head({1, 100, 6}), HeadKind::V5);
  EXPECT_THROW(kestrel::yolo::detect_head({1, 4, 100}), kestrel::Error);   // no class channel
  EXPECT_THROW(kestrel::yolo::detect_head({1, 100, 5}), kestrel::Error);   // no class after objectness
  EXPECT_THROW(kestrel::yolo::detect_head({84, 8400}), kestrel::Error);    // rank 2
  EXPECT_THROW(kestrel::yolo::detect_head({1, 1, 84, 8400}), kestrel::Error);
  EXPECT_THROW(kestrel::yolo::detect_head({1, 85, 85}), kestrel::Error);   // ambiguous
  EXPECT_THROW(kestrel::yolo::detect_head({0, 84, 8400}), kestrel::Error);
  try {
    kestrel::yolo::detect_head({1, 1000});
    FAIL();
  } catch (const kestrel::Error& e) {
    EXPECT_NE(std::string(e.what()).find("[1, 1000]"), std::string::npos) << e.what();
  }
  // An explicit kind must still fit the tensor.
  std::vector<float> dummy(1 * 3 * 100);
  EXPECT_THROW(kestrel::yolo::postprocess(dummy.data(), {1, 100, 3}, HeadKind::V5, NmsOptions::prediction()),
               kestrel::Error);
}

TEST(HeadDecode, V8BestClassAndStrictConfidence) {
  V8Tensor t(3, 4);
  t.set(0, {100, 100, 20, 10}, {0.1f, 0.9f, 0.3f});
  t.set(1, {300, 300, 10, 10}, {0.25f, 0.f, 0.f});                             // == conf: dropped
  t.set(2, {500, 500, 10, 10}, {std::nextafter(0.25f, 1.f), 0.f, 0.f});        // just above: kept
  t.set(3, {50, 50, 4, 4}, {0.6f, 0.6f, 0.f});                                 // tie: first class
  const auto cand = kestrel::yolo::decode_candidates(t.data.data(), 7, 4, HeadKind::V8, opts(0.25f, 0.7, false));
  ASSERT_EQ(cand.size(), 3u);
  EXPECT_EQ(cand[0].cls, 1);
  EXPECT_FLOAT_EQ(cand[0].score, 0.9f);
  EXPECT_FLOAT_EQ(cand[0].x1, 90.f);
  EXPECT_FLOAT_EQ(cand[0].y1, 95.f);
  EXPECT_FLOAT_EQ(cand[0].x2, 110.f);
  EXPECT_FLOAT_EQ(cand[0].y2, 105.f);
  EXPECT_FLOAT_EQ(cand[1].x1, 495.f);
  EXPECT_EQ(cand[2].cls, 0);
}

TEST(HeadDecode, V8MultiLabelMakesOneCandidatePerClass) {
  V8Tensor t(3, 16);
  t.set(0, {100, 100, 20, 20}, {0.5f, 0.002f, 0.0005f});
  t.set(1, {200, 200, 20, 20}, {0.0009f, 0.f, 0.f});  // below conf everywhere
  auto cand = kestrel::yolo::decode_candidates(t.data.data(), 7, 16, HeadKind::V8,
                                               NmsOptions::validation(HeadKind::V8));
  ASSERT_EQ(cand.size(), 2u);
  EXPECT_EQ(cand[0].cls, 0);
  EXPECT_EQ(cand[1].cls, 1);
  // Same box, different classes: both survive class-aware NMS.
  const auto dets = kestrel::yolo::postprocess(t.data.data(), t.shape(), HeadKind::Auto,
                                               NmsOptions::validation(HeadKind::V8))[0];
  ASSERT_EQ(dets.size(), 2u);
  EXPECT_FLOAT_EQ(dets[0].score, 0.5f);
  EXPECT_FLOAT_EQ(dets[1].score, 0.002f);
  // multi_label is ignored with a single class (Ultralytics: multi_label &= nc > 1).
  V8Tensor one(1, 1);
  one.set(0, {10, 10, 2, 2}, {0.5f});
  EXPECT_EQ(kestrel::yolo::decode_candidates(one.data.data(), 5, 1, HeadKind::V8, opts(0.1f, 0.7, true)).size(), 1u);
}

TEST(HeadDecode, V5ScoresAreObjectnessTimesClassAfterObjectnessFilter) {
  V5Tensor t(2, 16);  // more anchors than channels, so Auto sees a YOLOv5 layout
  t.set(0, {100, 100, 10, 10}, 0.8f, {0.5f, 0.25f});
  t.set(1, {300, 300, 10, 10}, 0.001f, {2.0f, 0.f});  // obj not > conf: dropped although obj*cls = 0.002
  t.set(2, {500, 500, 10, 10}, 0.5f, {0.0019f, 0.f}); // obj passes, obj*cls = 0.00095 < conf: dropped
  const auto cand = kestrel::yolo::decode_candidates(t.data.data(), 7, 16, HeadKind::V5,
                                                     NmsOptions::validation(HeadKind::V5));
  ASSERT_EQ(cand.size(), 2u);
  EXPECT_EQ(cand[0].score, 0.5f * 0.8f);
  EXPECT_EQ(cand[1].score, 0.25f * 0.8f);
  EXPECT_EQ(cand[1].cls, 1);
  EXPECT_FLOAT_EQ(cand[0].x1, 95.f);
  // Best-class mode.
  const auto best = kestrel::yolo::decode_candidates(t.data.data(), 7, 16, HeadKind::V5, opts(0.001f, 0.6, false));
  ASSERT_EQ(best.size(), 1u);
  EXPECT_EQ(best[0].cls, 0);
  EXPECT_EQ(NmsOptions::validation(HeadKind::V5).iou, 0.6);
  EXPECT_EQ(NmsOptions::validation(HeadKind::V8).iou, 0.7);
  EXPECT_EQ(kestrel::yolo::postprocess(t.data.data(), t.shape(), HeadKind::Auto, NmsOptions::validation(HeadKind::V5))[0].size(),
            2u);
}

TEST(Nms, SuppressesSameClassOverlapsWithStrictIou) {
  // IoU([0,0,10,10], [0,0,10,5]) = 50 / 100 = 0.5 exactly.
  std::vector<Box> cand = {{0, 0, 10, 10, 0.9f, 0}, {0, 0, 10, 5, 0.8f, 0}};
  EXPECT_EQ(kestrel::yolo::nms(cand, opts(0.f, 0.5, false)).size(), 2u);   // 0.5 > 0.5 is false
  EXPECT_EQ(kestrel::yolo::nms(cand, opts(0.f, 0.49, false)).size(), 1u);
  // IoU 3/5 is the float 0.6000000238 > 0.6 (double): torchvision suppresses, a float compare would not.
  std::vector<Box> c2 = {{0, 0, 5, 1, 0.9f, 0}, {0, 0, 3, 1, 0.8f, 0}};
  EXPECT_EQ(kestrel::yolo::nms(c2, opts(0.f, 0.6, false)).size(), 1u);
}

TEST(Nms, ClassOffsetKeepsOverlapsOfDifferentClasses) {
  std::vector<Box> cand = {{0, 0, 10, 10, 0.9f, 0}, {0, 0, 10, 10, 0.8f, 5}, {1, 1, 10, 10, 0.7f, 0}};
  auto out = kestrel::yolo::nms(cand, opts(0.f, 0.5, false));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].cls, 0);
  EXPECT_EQ(out[1].cls, 5);
  NmsOptions agn = opts(0.f, 0.5, false);
  agn.agnostic = true;
  EXPECT_EQ(kestrel::yolo::nms(cand, agn).size(), 1u);
}

TEST(Nms, TiesKeepCandidateOrder) {
  // Equal scores, overlapping, same class: the earlier candidate (lower anchor) survives.
  V8Tensor t(2, 6);
  t.set(2, {100, 100, 20, 20}, {0.f, 0.7f});
  t.set(5, {101, 100, 20, 20}, {0.f, 0.7f});
  t.set(4, {400, 400, 20, 20}, {0.7f, 0.f});
  const auto dets = kestrel::yolo::postprocess(t.data.data(), t.shape(), HeadKind::V8, opts(0.25f, 0.7, false))[0];
  ASSERT_EQ(dets.size(), 2u);
  EXPECT_FLOAT_EQ(dets[0].x1, 90.f);  // anchor 2, not anchor 5
  EXPECT_EQ(dets[0].cls, 1);
  EXPECT_EQ(dets[1].cls, 0);  // anchor 4 comes after anchor 2 among the equal scores
}

TEST(Nms, MaxDetAndMaxNmsKeepTheBest) {
  std::vector<Box> cand;
  for (int i = 0; i < 10; ++i)
    cand.push_back({i * 20.f, 0, i * 20.f + 10, 10, 0.1f + 0.05f * ((i * 7) % 10), i % 3});
  auto out = kestrel::yolo::nms(cand, opts(0.f, 0.5, false, 3));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_GE(out[0].score, out[1].score);
  EXPECT_GE(out[1].score, out[2].score);
  EXPECT_FLOAT_EQ(out[0].score, 0.1f + 0.05f * 9);
  NmsOptions o = opts(0.f, 0.5, false);
  o.max_nms = 4;
  out = kestrel::yolo::nms(cand, o);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_FLOAT_EQ(out[3].score, 0.1f + 0.05f * 6);
  EXPECT_TRUE(kestrel::yolo::nms(cand, opts(0.f, 0.5, false, 0)).empty());
  EXPECT_TRUE(kestrel::yolo::nms({}, opts(0.f, 0.5, false)).empty());
}

TEST(Nms, PerClassShortcutEqualsGlobalTorchvisionPass) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> pos(0.f, 600.f), size(2.f, 120.f), score(0.f, 1.f);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<Box> cand;
    const int n = 200 + trial * 50;
    for (int i = 0; i < n; ++i) {
      const float x = pos(rng), y = pos(rng);
      // Coarse scores create plenty of exact ties.
      cand.push_back({x, y, x + size(rng), y + size(rng), std::round(score(rng) * 20) / 20, int(rng() % 4)});
    }
    NmsOptions o = opts(0.f, trial % 2 ? 0.45 : 0.7, true, 100);
    o.max_nms = n - 17;
    const auto got = kestrel::yolo::nms(cand, o);
    const auto want = reference_nms(cand, o);
    ASSERT_EQ(got.size(), want.size()) << trial;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i].x1, want[i].x1) << trial << " " << i;
      ASSERT_EQ(got[i].cls, want[i].cls) << trial << " " << i;
    }
  }
  // Boxes spanning more than half the class offset take the global path; results still agree.
  std::vector<Box> wide = {{-5000, 0, 5000, 100, 0.9f, 0}, {-4000, 0, 5000, 100, 0.8f, 1}, {0, 0, 6000, 90, 0.7f, 0}};
  const auto got = kestrel::yolo::nms(wide, opts(0.f, 0.5, false));
  const auto want = reference_nms(wide, opts(0.f, 0.5, false));
  ASSERT_EQ(got.size(), want.size());
}

TEST(Nms, BatchedPostprocessKeepsImagesApart) {
  V8Tensor a(2, 10), b(2, 10);
  a.set(0, {10, 10, 4, 4}, {0.9f, 0.f});
  b.set(1, {50, 50, 4, 4}, {0.f, 0.8f});
  b.set(2, {90, 90, 4, 4}, {0.7f, 0.f});
  std::vector<float> batch = a.data;
  batch.insert(batch.end(), b.data.begin(), b.data.end());
  const auto out = kestrel::yolo::postprocess(batch.data(), {2, 6, 10}, HeadKind::Auto, NmsOptions::prediction());
  ASSERT_EQ(out.size(), 2u);
  ASSERT_EQ(out[0].size(), 1u);
  ASSERT_EQ(out[1].size(), 2u);
  EXPECT_EQ(out[1][0].cls, 1);
}

TEST(ScaleBoxes, UndoesPadsAndGainThenClips) {
  const auto info = kestrel::yolo::letterbox_geometry(352, 230, 640);  // gain 640/352, pads (0, 111)
  std::vector<Box> boxes = {{64, 111 + 64, 640, 640, 0.5f, 0},   // bottom beyond the image
                            {-20, 100, 10, 120, 0.4f, 1}};       // left of the image
  kestrel::yolo::scale_boxes(boxes, info);
  const float g = static_cast<float>(640.0 / 352.0);
  EXPECT_FLOAT_EQ(boxes[0].x1, 64 / g);
  EXPECT_FLOAT_EQ(boxes[0].y1, 64 / g);
  EXPECT_FLOAT_EQ(boxes[0].x2, 352.f);  // 640 / g = 352 exactly: clip keeps it
  EXPECT_FLOAT_EQ(boxes[0].y2, 230.f);  // (640 - 111) / g = 291: clipped to the height
  EXPECT_FLOAT_EQ(boxes[1].x1, 0.f);
  EXPECT_FLOAT_EQ(boxes[1].y1, 0.f);    // (100 - 111) < 0
  EXPECT_FLOAT_EQ(boxes[1].y2, 9 / g);
}
