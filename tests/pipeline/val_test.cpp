// kestrel's validation pipeline on the CPU backend against the reference pipeline's mAP on coco-val
// (ONNX Runtime + Ultralytics post-processing + pycocotools): within 0.002 for every model.
#include <gtest/gtest.h>

#include "kestrel/image.h"
#include "kestrel/onnx.h"
#include "kestrel/pipeline.h"
#include "test_data.h"
#include "tiny_onnx.h"

namespace {

struct ValCase {
  const char* model;
  double reference_map;  // MANIFEST.md: mAP@0.5:0.95 of the reference pipeline on coco-val
};

class ValCpu : public ::testing::TestWithParam<ValCase> {};

TEST_P(ValCpu, MatchesReferenceMap) {
  const auto [model, reference] = GetParam();
  const std::string rel = std::string("models/") + model + ".onnx";
  KESTREL_REQUIRE_DATA(rel);
  KESTREL_REQUIRE_DATA("coco-val/instances.json");
  kestrel::eval::Dataset ds = kestrel::eval::load_dataset(kestrel::test::data_path("coco-val"));
  auto engine = kestrel::make_cpu_engine(kestrel::import_onnx(kestrel::test::data_path(rel)));
  kestrel::pipeline::ValOptions o;
  o.progress = false;
  auto r = kestrel::pipeline::validate(*engine, ds, o);
  std::printf("%s: mAP50-95 %.4f (reference %.4f), mAP50 %.4f, %d images\n", model, r.stats.stats[0], reference,
              r.stats.stats[1], r.images);
  EXPECT_EQ(r.images, 124);
  EXPECT_EQ(r.skipped, 0);
  EXPECT_NEAR(r.stats.stats[0], reference, 0.002);
}

INSTANTIATE_TEST_SUITE_P(Models, ValCpu,
                         ::testing::Values(ValCase{"yolov5n", 0.3163}, ValCase{"yolov8n", 0.4076},
                                           ValCase{"yolo11n", 0.4310}),
                         [](const auto& info) { return std::string(info.param.model); });

TEST(Pipeline, ModelWithoutDetectionHeadIsRejected) {
  KESTREL_REQUIRE_DATA("coco-val/instances.json");
  const std::string bytes = kestrel::test::tiny_conv_model();
  // The tiny model's input is [1,3,8,8] and its output [1,4,8,8]: an image model, not a detector.
  auto engine = kestrel::make_cpu_engine(kestrel::import_onnx_bytes(bytes.data(), bytes.size()));
  kestrel::eval::Dataset ds = kestrel::eval::load_dataset(kestrel::test::data_path("coco-val"));
  EXPECT_THROW(kestrel::pipeline::validate(*engine, ds), kestrel::Error);
  EXPECT_THROW(kestrel::pipeline::predict(*engine, {kestrel::test::data_path("coco-val/images/000000000139.jpg")}),
               kestrel::Error);
}

TEST(Pipeline, ClassNamesFromUltralyticsMetadata) {
  std::map<std::string, std::string> md = {{"names", "{0: 'cat', 1: \"dog\", 2: 'traffic light'}"}};
  auto names = kestrel::pipeline::class_names(md, 3);
  ASSERT_EQ(names.size(), 3u);
  EXPECT_EQ(names[1], "dog");
  EXPECT_EQ(names[2], "traffic light");
  // Metadata that does not fit the head falls back to COCO-80.
  EXPECT_EQ(kestrel::pipeline::class_names(md, 80)[0], "person");
}

TEST(Pipeline, ExpandSources) {
  KESTREL_REQUIRE_DATA("coco-val/images/000000000139.jpg");
  const std::string dir = kestrel::test::data_path("coco-val/images").string();
  EXPECT_EQ(kestrel::pipeline::expand_sources({dir}).size(), 124u);
  EXPECT_EQ(kestrel::pipeline::expand_sources({dir + "/00000000013?.jpg"}).size(), 1u);
  EXPECT_THROW(kestrel::pipeline::expand_sources({dir + "/nothing*.jpg"}), kestrel::Error);
  EXPECT_THROW(kestrel::pipeline::expand_sources({"/nonexistent.jpg"}), kestrel::Error);
}

}  // namespace
