// COCO evaluator: hand-made cases whose pycocotools result can be worked out on paper, the numpy
// helpers bit for bit, and the published 12 numbers of three real models on coco-val.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "eval/coco_eval.h"
#include "kestrel/eval.h"
#include "test_data.h"

namespace ke = kestrel::eval;

namespace {

// One 640x480 image (id 1), categories 1 "a" and 2 "b".
struct Scene {
  std::vector<int64_t> images{1};
  std::vector<ke::Category> cats{{1, "a"}, {2, "b"}};
  std::vector<ke::GtBox> gt;
  std::vector<ke::Detection> dets;
  int64_t next_gt = 1;

  void add_gt(int cat, double x, double y, double w, double h, bool crowd = false, int64_t image = 1) {
    gt.push_back({next_gt++, image, cat, x, y, w, h, w * h, crowd});
  }
  void add_det(int cat, double x, double y, double w, double h, double score, int64_t image = 1) {
    dets.push_back({image, cat, x, y, w, h, score});
  }
  ke::CocoStats eval() const { return ke::evaluate_bbox(images, cats, gt, dets); }
};

}  // namespace

TEST(CocoEval, PerfectDetectionScoresOne) {
  Scene s;
  s.add_gt(1, 100, 100, 200, 150);  // area 30000: large
  s.add_det(1, 100, 100, 200, 150, 0.9);
  const auto r = s.eval();
  const std::array<double, 12> want = {1, 1, 1, -1, -1, 1, 1, 1, 1, -1, -1, 1};
  for (int i = 0; i < 12; ++i) EXPECT_DOUBLE_EQ(r.stats[i], want[i]) << ke::CocoStats::names()[i];
  ASSERT_EQ(r.per_class.size(), 2u);
  EXPECT_EQ(r.per_class[0].category_id, 1);
  EXPECT_EQ(r.per_class[0].name, "a");
  EXPECT_DOUBLE_EQ(r.per_class[0].ap, 1);
  EXPECT_DOUBLE_EQ(r.per_class[0].ap50, 1);
  EXPECT_EQ(r.per_class[0].instances, 1);
  EXPECT_EQ(r.per_class[0].images, 1);
}

TEST(CocoEval, EmptyCategoryIsMinusOneAndLeftOutOfTheMean) {
  Scene s;
  s.add_gt(1, 10, 10, 50, 50);                 // area 2500: medium
  s.add_det(1, 10, 10, 50, 50, 0.9);
  s.add_det(2, 300, 300, 40, 40, 0.95);        // category 2 has no GT anywhere
  const auto r = s.eval();
  EXPECT_DOUBLE_EQ(r.stats[0], 1);             // category 2 does not drag the mean down
  EXPECT_DOUBLE_EQ(r.per_class[1].ap, -1);
  EXPECT_DOUBLE_EQ(r.per_class[1].ap50, -1);
  EXPECT_EQ(r.per_class[1].instances, 0);
  EXPECT_DOUBLE_EQ(r.stats[3], -1);            // no small GT at all
  EXPECT_DOUBLE_EQ(r.stats[5], -1);            // no large GT at all
  EXPECT_DOUBLE_EQ(r.stats[4], 1);
}

TEST(CocoEval, NoGroundTruthAtAllGivesMinusOneEverywhere) {
  Scene s;
  s.add_det(1, 10, 10, 50, 50, 0.9);
  const auto r = s.eval();
  for (double v : r.stats) EXPECT_DOUBLE_EQ(v, -1);
}

TEST(CocoEval, NoDetectionsGivesZero) {
  Scene s;
  s.add_gt(1, 10, 10, 50, 50);
  const auto r = s.eval();
  EXPECT_DOUBLE_EQ(r.stats[0], 0);
  EXPECT_DOUBLE_EQ(r.stats[8], 0);
}

TEST(CocoEval, FalsePositiveRankedFirstCostsPrecision) {
  // Two GTs found by the 2nd and 3rd ranked detections; the top one is a false positive.
  // rc = [0, .5, 1], pr = [0, .5, 2/3] → envelope 2/3 at every recall threshold.
  Scene s;
  s.add_gt(1, 0, 0, 100, 100);
  s.add_gt(1, 200, 200, 100, 100);
  s.add_det(1, 400, 0, 100, 100, 0.9);  // FP
  s.add_det(1, 0, 0, 100, 100, 0.8);
  s.add_det(1, 200, 200, 100, 100, 0.7);
  auto r = s.eval();
  EXPECT_NEAR(r.stats[0], 2.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(r.stats[6], 0);  // AR@1: the only detection kept is the false positive
  EXPECT_DOUBLE_EQ(r.stats[7], 1);
  EXPECT_DOUBLE_EQ(r.stats[8], 1);

  // Ranked last it costs nothing.
  s.dets[0].score = 0.1;
  r = s.eval();
  EXPECT_DOUBLE_EQ(r.stats[0], 1);
  EXPECT_DOUBLE_EQ(r.stats[6], 0.5);
}

TEST(CocoEval, EqualScoresKeepInputOrder) {
  // numpy's argsort(kind='mergesort') is stable: with equal scores the first detection given ranks first.
  Scene s;
  s.add_gt(1, 0, 0, 100, 100);
  s.add_det(1, 300, 300, 100, 100, 0.5);  // FP first
  s.add_det(1, 0, 0, 100, 100, 0.5);
  EXPECT_DOUBLE_EQ(s.eval().stats[0], 0.5);
  std::swap(s.dets[0], s.dets[1]);          // TP first
  EXPECT_DOUBLE_EQ(s.eval().stats[0], 1);
}

TEST(CocoEval, CrowdRegionIsIgnored) {
  // A crowd GT absorbs any number of detections (IoU = intersection / detection area) without them
  // being false positives, and missing it is no miss.
  Scene s;
  s.add_gt(1, 0, 0, 100, 100);
  s.add_gt(1, 200, 0, 300, 300, /*crowd=*/true);
  s.add_det(1, 220, 20, 50, 50, 0.95);   // inside the crowd: IoU 1 with the crowd
  s.add_det(1, 300, 100, 60, 60, 0.9);   // inside the crowd
  s.add_det(1, 0, 0, 100, 100, 0.8);
  auto r = s.eval();
  EXPECT_DOUBLE_EQ(r.stats[0], 1);
  EXPECT_DOUBLE_EQ(r.stats[8], 1);
  EXPECT_EQ(r.per_class[0].instances, 1);  // crowds are not instances

  // The same region as a normal GT: two false positives ranked first, and a missed GT.
  s.gt[1].iscrowd = false;
  r = s.eval();
  EXPECT_LT(r.stats[0], 0.5);
}

TEST(CocoEval, CrowdIouIsIntersectionOverDetectionArea) {
  const double crowd[4] = {0, 0, 100, 100};
  const double det[4] = {50, 50, 100, 100};  // a quarter of the detection lies inside
  EXPECT_DOUBLE_EQ(ke::detail::bbox_iou(det, crowd, true), 0.25);
  EXPECT_DOUBLE_EQ(ke::detail::bbox_iou(det, crowd, false), 2500.0 / 17500.0);
  const double apart[4] = {100, 0, 10, 10};  // touching edges: w == 0 → 0
  EXPECT_DOUBLE_EQ(ke::detail::bbox_iou(apart, crowd, false), 0);
}

TEST(CocoEval, IouThresholdsCountSeparately) {
  // IoU 7700 / 12300 = 0.626 matches at .50/.55/.60 only: AP = 3/10, AP50 = 1, AP75 = 0.
  Scene s;
  s.add_gt(1, 0, 0, 100, 100);
  s.add_det(1, 23, 0, 100, 100, 0.9);
  const auto r = s.eval();
  EXPECT_NEAR(r.stats[0], 0.3, 1e-12);
  EXPECT_DOUBLE_EQ(r.stats[1], 1);
  EXPECT_DOUBLE_EQ(r.stats[2], 0);
  EXPECT_DOUBLE_EQ(r.per_class[0].ap50, 1);
}

TEST(CocoEval, UnmatchedDetectionsOutsideTheAreaRangeAreIgnored) {
  Scene s;
  s.add_gt(1, 0, 0, 20, 20);                 // small (400)
  s.add_det(1, 300, 300, 200, 200, 0.99);     // large false positive, ranked first
  s.add_det(1, 0, 0, 20, 20, 0.5);
  const auto r = s.eval();
  EXPECT_DOUBLE_EQ(r.stats[3], 1);   // APs: the large FP is out of range, so ignored
  EXPECT_DOUBLE_EQ(r.stats[5], -1);  // APl: no large GT
  EXPECT_NEAR(r.stats[0], 0.5, 1e-12);  // area all: it counts
}

TEST(CocoEval, GtAreaFieldDecidesTheAreaRange) {
  // COCO's `area` is the segment area: a 40x40 box (1600, medium by w*h) with area 900 is small.
  Scene s;
  s.gt.push_back({1, 1, 1, 0, 0, 40, 40, 900, false});
  s.add_det(1, 0, 0, 40, 40, 0.9);
  const auto r = s.eval();
  EXPECT_DOUBLE_EQ(r.stats[3], 1);
  EXPECT_DOUBLE_EQ(r.stats[4], -1);
}

TEST(CocoEval, AtMostOneHundredDetectionsPerImageAndCategory) {
  Scene s;
  s.add_gt(1, 0, 0, 50, 50);
  for (int i = 0; i < 100; ++i) s.add_det(1, 400, 400, 10, 10, 0.9);  // 100 FPs ranked above the TP
  s.add_det(1, 0, 0, 50, 50, 0.1);
  EXPECT_DOUBLE_EQ(s.eval().stats[8], 0);  // the TP is the 101st: cut
  s.dets.pop_back();
  s.dets.pop_back();
  s.add_det(1, 0, 0, 50, 50, 0.1);        // now 100th
  EXPECT_DOUBLE_EQ(s.eval().stats[8], 1);
}

TEST(CocoEval, ImagesWithoutGroundTruthContributeFalsePositives) {
  Scene s;
  s.images = {1, 2};
  s.add_gt(1, 0, 0, 50, 50);
  s.add_det(1, 0, 0, 50, 50, 0.5);
  EXPECT_DOUBLE_EQ(s.eval().stats[0], 1);
  s.add_det(1, 0, 0, 50, 50, 0.9, /*image=*/2);  // image 2 has no GT: a false positive ranked first
  EXPECT_NEAR(s.eval().stats[0], 0.5, 1e-12);
}

TEST(CocoEval, GroundTruthWithIdZeroNeverMatches) {
  // pycocotools stores the matched GT's id and tests it for != 0; kept for identical results.
  Scene s;
  s.gt.push_back({0, 1, 1, 0, 0, 50, 50, 2500, false});
  s.add_det(1, 0, 0, 50, 50, 0.9);
  EXPECT_DOUBLE_EQ(s.eval().stats[0], 0);
}

TEST(CocoEval, DetectionOnUnknownImageIsAnError) {
  Scene s;
  s.add_gt(1, 0, 0, 50, 50);
  s.add_det(1, 0, 0, 50, 50, 0.9, /*image=*/77);
  try {
    s.eval();
    FAIL() << "expected kestrel::Error";
  } catch (const kestrel::Error& e) {
    EXPECT_NE(std::string(e.what()).find("77"), std::string::npos) << e.what();
  }
}

TEST(CocoEval, DetectionsOfUnknownCategoriesAreDropped) {
  Scene s;
  s.add_gt(1, 0, 0, 50, 50);
  s.add_det(1, 0, 0, 50, 50, 0.5);
  s.add_det(99, 0, 0, 50, 50, 0.9);  // loadRes keeps it, getAnnIds(catIds=...) never returns it
  EXPECT_DOUBLE_EQ(s.eval().stats[0], 1);
}

TEST(CocoEval, FormatStatsMatchesPycocotoolsLayout) {
  Scene s;
  s.add_gt(1, 0, 0, 50, 50);
  s.add_det(1, 0, 0, 50, 50, 0.5);
  const std::string text = ke::format_stats(s.eval());
  EXPECT_NE(text.find(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(" Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = -1.000\n"),
            std::string::npos)
      << text;
}

TEST(NumpyCompat, LinspaceMatchesNumpyBitForBit) {
  const auto& p = ke::detail::coco_params();
  ASSERT_EQ(p.iou_thrs.size(), 10u);
  ASSERT_EQ(p.rec_thrs.size(), 101u);
  // np.linspace(.5, 0.95, 10).tolist(): index 8 is 0.8999999999999999, not 0.9.
  EXPECT_EQ(p.iou_thrs[8], 0.8999999999999999);
  EXPECT_NE(p.iou_thrs[8], 0.9);
  EXPECT_EQ(p.iou_thrs[0], 0.5);
  EXPECT_EQ(p.iou_thrs[5], 0.75);
  EXPECT_EQ(p.iou_thrs[9], 0.95);
  EXPECT_EQ(p.rec_thrs[100], 1.0);
  EXPECT_EQ(p.rec_thrs[7], 7 * 0.01);
}

TEST(NumpyCompat, MeanMatchesNumpyBitForBit) {
  // Reference values: np.mean of ((i * 0.37) % 1 for i in range(n)) for numpy 1.24, as float.hex().
  std::vector<double> v;
  for (int i = 0; i < 20000; ++i) v.push_back(std::fmod(i * 0.37, 1.0));
  auto head = [&](size_t n) { return std::vector<double>(v.begin(), v.begin() + n); };
  EXPECT_EQ(ke::detail::numpy_mean(v), 0x1.fae147ae14495p-2);
  EXPECT_EQ(ke::detail::numpy_mean(head(8193)), 0x1.fadbae4146329p-2);
  EXPECT_EQ(ke::detail::numpy_mean(head(100)), 0x1.fae147ae147aap-2);
  EXPECT_EQ(ke::detail::numpy_mean(head(5)), 0x1.5c28f5c28f5c2p-2);
}

// ------------------------------------------------------------------------------------------------
// Real models on coco-val: the 12 numbers pycocotools printed for the reference pipeline.
// ------------------------------------------------------------------------------------------------

class CocoValReference : public ::testing::TestWithParam<const char*> {};

TEST_P(CocoValReference, ReproducesPycocotoolsStats) {
  const std::string model = GetParam();
  KESTREL_REQUIRE_DATA("coco-val/instances.json");
  KESTREL_REQUIRE_DATA("eval/" + model + ".coco-val.dets.json");
  KESTREL_REQUIRE_DATA("eval/" + model + ".coco-val.stats.json");

  // stats.json: a plain list of the 12 numbers, rounded to 6 decimals.
  std::ifstream f(kestrel::test::data_path("eval/" + model + ".coco-val.stats.json"));
  const auto want = nlohmann::json::parse(f);
  ASSERT_TRUE(want.is_array());
  ASSERT_EQ(want.size(), 12u);

  ke::LoadOptions opts;
  opts.check_images = false;  // the numbers need only the JSON
  const ke::Dataset ds = ke::load_dataset(kestrel::test::data_path("coco-val/instances.json").string(), opts);
  const auto dets = ke::read_coco_results(kestrel::test::data_path("eval/" + model + ".coco-val.dets.json").string());
  const ke::CocoStats got = ke::evaluate_bbox(ds, dets);

  double max_diff = 0;
  for (int i = 0; i < 12; ++i) {
    EXPECT_NEAR(got.stats[i], want[i].get<double>(), 1e-4) << model << " " << ke::CocoStats::names()[i];
    max_diff = std::max(max_diff, std::fabs(got.stats[i] - want[i].get<double>()));
  }
  // The reference is rounded to 6 decimals, so anything but a rounding difference is a real mismatch.
  EXPECT_LE(max_diff, 5.0000001e-7) << model;
  std::cout << "[ " << model << " ] max |diff| vs pycocotools = " << max_diff << "\n" << ke::format_stats(got);

  // Per class: 78 of the 80 categories have GT here; the rest report -1.
  ASSERT_EQ(got.per_class.size(), 80u);
  int with_gt = 0;
  for (const auto& c : got.per_class) {
    if (c.instances > 0) {
      ++with_gt;
      EXPECT_GE(c.ap, 0);
      EXPECT_GE(c.ap50, 0);
    } else {
      EXPECT_EQ(c.ap, -1) << c.name;
    }
  }
  EXPECT_EQ(with_gt, 78);
}

TEST(CocoValBitExact, MatchesNumpyPycocotoolsToTheLastBit) {
  // The same three runs, full float64: values from pycocotools' cocoeval.py algorithm executed with
  // numpy 1.24 (the 6-decimal stats.json cannot show a last-bit difference; these can). Whole precision
  // and recall arrays were compared the same way while developing, plus 260 random adversarial cases
  // (score ties, crowds, IoUs exactly at thresholds, >100 detections, GT id 0): all identical.
  KESTREL_REQUIRE_DATA("coco-val/instances.json");
  const std::map<std::string, std::array<double, 12>> want = {
      {"yolov5n", {0x1.43e6e2e82368ap-2, 0x1.007deb5c99c95p-1, 0x1.5c17aa5809e96p-2, 0x1.58bee93fbc767p-3,
                   0x1.87444c24fae3dp-2, 0x1.c0fdb5c5402dfp-2, 0x1.28c98f84ec0c2p-2, 0x1.c11e1997cb0fdp-2,
                   0x1.edffd392e1a00p-2, 0x1.24f9628eeece4p-2, 0x1.1ba0369aa370bp-1, 0x1.47c0bc56957c0p-1}},
      {"yolov8n", {0x1.a1627c391b819p-2, 0x1.21d806e0534f3p-1, 0x1.bafce21befd47p-2, 0x1.c9c7b50615e99p-3,
                   0x1.f4bd0b466f5a6p-2, 0x1.24a2471e58c53p-1, 0x1.76bab22645de3p-2, 0x1.212eeb4a74393p-1,
                   0x1.39dcbd806e803p-1, 0x1.847fc5e22994dp-2, 0x1.58b5f7716b529p-1, 0x1.8f1bbde9119c7p-1}},
      {"yolo11n", {0x1.b951cb998355cp-2, 0x1.26852c9e3acf8p-1, 0x1.d431eebb677efp-2, 0x1.ca3fdeeaa8c13p-3,
                   0x1.04a345ec64a4dp-1, 0x1.3ace8e28a1fccp-1, 0x1.876b45d2be523p-2, 0x1.1fef9557c499ep-1,
                   0x1.38c1269b28585p-1, 0x1.87b66f8a1ddf9p-2, 0x1.5652497201e74p-1, 0x1.98a571f2bf794p-1}}};
  ke::LoadOptions opts;
  opts.check_images = false;
  const ke::Dataset ds = ke::load_dataset(kestrel::test::data_path("coco-val/instances.json").string(), opts);
  for (const auto& [model, stats] : want) {
    // The data set ships all three results files: one missing is a broken data set, not a skip.
    const std::string rel = "eval/" + model + ".coco-val.dets.json";
    ASSERT_TRUE(std::filesystem::exists(kestrel::test::data_path(rel))) << kestrel::test::data_path(rel);
    const auto got = ke::evaluate_bbox(ds, ke::read_coco_results(kestrel::test::data_path(rel).string()));
    for (int i = 0; i < 12; ++i) EXPECT_EQ(got.stats[i], stats[i]) << model << " " << ke::CocoStats::names()[i];
  }
}

INSTANTIATE_TEST_SUITE_P(Models, CocoValReference, ::testing::Values("yolov5n", "yolov8n", "yolo11n"),
                         [](const auto& info) { return std::string(info.param); });

TEST(CocoEvalDataset, GroundTruthAsDetectionsScoresOneOnCoco128Labels) {
  // End to end through the YOLO loader: detections equal to the labels are perfect.
  KESTREL_REQUIRE_DATA("coco128/labels");
  ke::LoadOptions o;
  o.format = ke::DatasetFormat::Yolo;
  const ke::Dataset ds = ke::load_dataset(kestrel::test::data_path("coco128").string(), o);
  std::vector<ke::Detection> dets;
  for (const auto& g : ds.gt) dets.push_back({g.image_id, g.category_id, g.x, g.y, g.w, g.h, 0.9});
  const auto r = ke::evaluate_bbox(ds, dets);
  for (int i = 0; i < 12; ++i) {
    if (i == 6 || i == 7) continue;  // AR@1 / AR@10 are below 1 where an image has more objects
    EXPECT_DOUBLE_EQ(r.stats[i], 1) << ke::CocoStats::names()[i];
  }
  EXPECT_LT(r.stats[6], 1);
}
