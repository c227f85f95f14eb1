// The detector comparison (tests/support/detector_compare.h) sees every fault it exists for: planted in
// a reference output -- class scores zeroed, every box moved by one pixel, one wrong element (a score,
// a box coordinate, YOLOv5's objectness) -- each one fails under both the FP32 and the FP16 bounds,
// while the reference itself, and the reference rounded to fp16, pass. On synthetic heads (always) and
// on ONNX Runtime's golden outputs of the real models (with the shared data).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <vector>

#include "detector_compare.h"
#include "kestrel/tensor.h"
#include "test_data.h"

namespace {

using kestrel::test::HeadBounds;
using kestrel::test::HeadError;

struct Head {
  std::vector<float> v;
  std::vector<int64_t> shape;
  bool v8 = true;
  int64_t channels() const { return v8 ? shape[1] : shape[2]; }
  int64_t anchors() const { return v8 ? shape[2] : shape[1]; }
  float& at(int64_t c, int64_t a) { return v8 ? v[c * anchors() + a] : v[a * channels() + c]; }
  float at(int64_t c, int64_t a) const { return v8 ? v[c * anchors() + a] : v[a * channels() + c]; }
  int64_t first_score() const { return v8 ? 4 : 5; }
  // The anchor holding the highest class score (the best detection).
  int64_t best_anchor() const {
    int64_t best = 0;
    float s = -1;
    for (int64_t a = 0; a < anchors(); ++a)
      for (int64_t c = first_score(); c < channels(); ++c)
        if (at(c, a) * (v8 ? 1.f : at(4, a)) > s) {
          s = at(c, a) * (v8 ? 1.f : at(4, a));
          best = a;
        }
    return best;
  }
};

// A plausible head: boxes over a 640-pixel input, background scores below 0.05, a few confident
// objects (each seen by a few neighbouring anchors, as a real head sees them).
Head synthetic(bool v8, int64_t anchors = 600, int64_t nc = 80) {
  Head h;
  h.v8 = v8;
  h.shape = v8 ? std::vector<int64_t>{1, 4 + nc, anchors} : std::vector<int64_t>{1, anchors, 5 + nc};
  h.v.assign(static_cast<size_t>(anchors * (nc + (v8 ? 4 : 5))), 0.f);
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (int64_t a = 0; a < anchors; ++a) {
    h.at(0, a) = 20 + 600 * u(rng);
    h.at(1, a) = 20 + 600 * u(rng);
    h.at(2, a) = 8 + 150 * u(rng);
    h.at(3, a) = 8 + 150 * u(rng);
    if (!v8) h.at(4, a) = 0.02f * u(rng);
    for (int64_t c = h.first_score(); c < h.channels(); ++c) h.at(c, a) = 0.05f * u(rng);
  }
  for (int obj = 0; obj < 6; ++obj) {
    const int64_t a0 = 10 + obj * 97;
    const int cls = (obj * 13) % static_cast<int>(nc);
    for (int64_t k = 0; k < 3; ++k) {
      const int64_t a = a0 + k;
      h.at(0, a) = h.at(0, a0) + k;
      h.at(1, a) = h.at(1, a0) - k;
      h.at(2, a) = h.at(2, a0);
      h.at(3, a) = h.at(3, a0);
      h.at(h.first_score() + cls, a) = 0.95f - 0.1f * obj - 0.05f * k;
      if (!v8) h.at(4, a) = 0.97f;
    }
  }
  return h;
}

HeadError cmp(const Head& got, const Head& ref) { return kestrel::test::compare_head(got.v.data(), ref.v.data(), ref.shape); }

// Every planted fault fails under both precisions' bounds; the clean and fp16-rounded copies pass.
void check_faults(const Head& ref) {
  const HeadBounds bounds[] = {kestrel::test::bounds_fp32(), kestrel::test::bounds_fp16()};
  const char* names[] = {"fp32", "fp16"};
  for (int k = 0; k < 2; ++k) {
    SCOPED_TRACE(names[k]);
    const HeadBounds& b = bounds[k];
    EXPECT_TRUE(within(cmp(ref, ref), b));

    Head zeroed = ref;
    for (int64_t a = 0; a < ref.anchors(); ++a)
      for (int64_t c = ref.first_score(); c < ref.channels(); ++c) zeroed.at(c, a) = 0;
    EXPECT_FALSE(within(cmp(zeroed, ref), b)) << "zeroed class scores";

    for (int coord = 0; coord < 2; ++coord) {
      Head shifted = ref;
      for (int64_t a = 0; a < ref.anchors(); ++a) shifted.at(coord, a) += 1.f;
      const HeadError e = cmp(shifted, ref);
      EXPECT_FALSE(within(e, b)) << "every box moved by one pixel along " << (coord ? "y" : "x");
      EXPECT_NEAR(e.boxes.bias, 1.0, 1e-3);
    }

    const int64_t best = ref.best_anchor();
    {  // One wrong score: a phantom confident detection at an anchor that had none.
      Head one = ref;
      int64_t a = (best + ref.anchors() / 2) % ref.anchors();
      while (one.at(ref.first_score() + 1, a) > 0.2f || (!ref.v8 && one.at(4, a) > 0.2f)) a = (a + 1) % ref.anchors();
      one.at(ref.first_score() + 1, a) = 0.9f;
      if (!ref.v8) one.at(4, a) = 0.9f;
      EXPECT_FALSE(within(cmp(one, ref), b)) << "one phantom score";
    }
    {  // One wrong score: the best detection's class score halved.
      Head one = ref;
      for (int64_t c = ref.first_score(); c < ref.channels(); ++c) one.at(c, best) *= 0.5f;
      EXPECT_FALSE(within(cmp(one, ref), b)) << "best detection's score halved";
    }
    {  // One wrong box coordinate, at an anchor no detection comes from: only max-abs can see it.
      Head one = ref;
      const int64_t a = (best + 1 + ref.anchors() / 3) % ref.anchors();
      one.at(2, a) += 100.f;
      EXPECT_FALSE(within(cmp(one, ref), b)) << "one box width 100 px off";
    }
    {  // The best detection's box one pixel wider on one side.
      Head one = ref;
      one.at(2, best) += 2.f;
      const HeadError e = cmp(one, ref);
      EXPECT_NEAR(e.dets.max_box_px, 1.0, 1e-3);
      if (k == 0) EXPECT_FALSE(within(e, b)) << "best detection 1 px wider on each side";
    }
    if (!ref.v8) {
      Head obj = ref;
      for (int64_t a = 0; a < ref.anchors(); ++a) obj.at(4, a) = 0;
      EXPECT_FALSE(within(cmp(obj, ref), b)) << "zeroed objectness";
      Head one = ref;
      one.at(4, best) = 0.3f;
      EXPECT_FALSE(within(cmp(one, ref), b)) << "best detection's objectness wrong";
    }
    {  // An element never written (NaN).
      Head nan = ref;
      nan.at(ref.first_score() + 3, ref.anchors() - 1) = NAN;
      EXPECT_FALSE(within(cmp(nan, ref), b)) << "NaN element";
    }
  }
  // Rounding every element to fp16 (what fp16 storage of the output alone does) is FP16 noise.
  Head rounded = ref;
  for (float& x : rounded.v) x = kestrel::f16_to_f32(kestrel::f32_to_f16(x));
  const HeadError e = cmp(rounded, ref);
  EXPECT_TRUE(within(e, kestrel::test::bounds_fp16()));
  EXPECT_GT(e.boxes.max_abs, 0) << "the rounding changed nothing: the check would be vacuous";
}

TEST(DetectorCompare, SyntheticV8FaultsAreCaught) { check_faults(synthetic(true)); }
TEST(DetectorCompare, SyntheticV5FaultsAreCaught) { check_faults(synthetic(false)); }

// A detection just above the threshold on one side and just below on the other is borderline (allowed);
// a confident one missing is not.
TEST(DetectorCompare, BorderlineDetectionsMayFlipConfidentOnesMayNot) {
  const Head ref = synthetic(true);
  Head near = ref;
  const int64_t a = 300;
  near.at(4 + 7, a) = 0.25f + 0.005f;
  Head ref2 = ref;
  ref2.at(4 + 7, a) = 0.25f - 0.004f;
  EXPECT_TRUE(within(kestrel::test::compare_head(near.v.data(), ref2.v.data(), ref.shape), kestrel::test::bounds_fp16()));
  EXPECT_FALSE(within(kestrel::test::compare_head(near.v.data(), ref2.v.data(), ref.shape), kestrel::test::bounds_fp32()));
  const HeadError e = kestrel::test::compare_head(near.v.data(), ref2.v.data(), ref.shape);
  ASSERT_EQ(e.dets.unpaired.size(), 1u);
  EXPECT_NEAR(e.dets.unpaired[0].margin, 0.005, 1e-6);
}

TEST(DetectorCompare, ReferenceWithoutDetectionsIsNotAPass) {
  Head h = synthetic(true);
  for (int64_t a = 0; a < h.anchors(); ++a)
    for (int64_t c = 4; c < h.channels(); ++c) h.at(c, a) = 0.01f;
  EXPECT_FALSE(within(cmp(h, h), kestrel::test::bounds_fp32()));
}

Head read_golden(const std::string& model, const std::string& image) {
  const auto path = kestrel::test::data_path("golden/" + model + "." + image + ".output.bin");
  std::ifstream f(path, std::ios::binary);
  Head h;
  h.v8 = model != "yolov5n";
  h.shape = h.v8 ? std::vector<int64_t>{1, 84, 8400} : std::vector<int64_t>{1, 25200, 85};
  h.v.resize(static_cast<size_t>(h.shape[0] * h.shape[1] * h.shape[2]));
  f.read(reinterpret_cast<char*>(h.v.data()), static_cast<std::streamsize>(h.v.size() * sizeof(float)));
  EXPECT_TRUE(f && f.gcount() == static_cast<std::streamsize>(h.v.size() * sizeof(float)))
      << path << " is not a " << (h.v8 ? "[1, 84, 8400]" : "[1, 25200, 85]") << " float32 output";
  return h;
}

class GoldenFaults : public ::testing::TestWithParam<const char*> {};

TEST_P(GoldenFaults, EveryPlantedFaultIsCaught) {
  const std::string model = GetParam();
  for (const char* image : {"000000000139", "000000037777"}) {
    KESTREL_REQUIRE_DATA("golden/" + model + "." + image + ".output.bin");
    SCOPED_TRACE(image);
    check_faults(read_golden(model, image));
  }
}

// The reason this comparison exists: on the real yolov8n output the single relative L2 over the whole
// tensor cannot see zeroed class scores (< 1e-4, the old FP32 bound), the per-part check can.
TEST(DetectorCompare, WholeTensorRelL2MissesZeroedScores) {
  KESTREL_REQUIRE_DATA("golden/yolov8n.000000000139.output.bin");
  const Head ref = read_golden("yolov8n", "000000000139");
  Head zeroed = ref;
  for (int64_t a = 0; a < ref.anchors(); ++a)
    for (int64_t c = 4; c < ref.channels(); ++c) zeroed.at(c, a) = 0;
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.v.size(); ++i) {
    num += (static_cast<double>(zeroed.v[i]) - ref.v[i]) * (zeroed.v[i] - ref.v[i]);
    den += static_cast<double>(ref.v[i]) * ref.v[i];
  }
  EXPECT_LT(std::sqrt(num / den), 1e-4);
  const HeadError e = cmp(zeroed, ref);
  EXPECT_DOUBLE_EQ(e.scores.rel_l2, 1.0);
  EXPECT_FALSE(within(e, kestrel::test::bounds_fp32()));
}

INSTANTIATE_TEST_SUITE_P(Models, GoldenFaults, ::testing::Values("yolov8n", "yolov5n", "yolo11n"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
