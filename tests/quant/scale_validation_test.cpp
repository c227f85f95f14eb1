// Numbers read from models and caches are validated: a Q/DQ scale of 0, inf, NaN or a denormal is
// refused with the node's name (it would run, and give mAP 0 with exit 0); calibration caches are
// checked the same way, and an empty cache or one made with another algorithm is not used silently.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "onnx/exporter.h"
#include "quant_test_util.h"

namespace {
using namespace kestrel;
using test::TempDir;

// x -> Q(scale) -> DQ(scale) -> conv: another tool's activation-only Q/DQ model, as ONNX bytes.
std::string qdq_model_bytes(float scale) {
  test::GraphBuilder b;
  const auto s = b.constant("s", HostTensor::scalar_f32(scale));
  const auto z = b.constant("z", HostTensor(DType::I8, {}));
  const auto q = b.node("QuantizeLinear", {b.input("x", {1, 3, 8, 8}), s, z}, {}, "input_q");
  b.output(b.conv(b.node("DequantizeLinear", {q, s, z}, {}, "input_dq"), 3, 4, 3, 1, 1, true, "conv"));
  return export_onnx_bytes(b.build());
}

TEST(QdqScales, ZeroInfNanAndDenormalAreRefusedWithTheNodeName) {
  const float bad[] = {0.f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                       std::numeric_limits<float>::denorm_min() * 8, -0.02f};
  const char* what[] = {"zero", "infinite", "NaN", "denormal", "negative"};
  for (size_t i = 0; i < std::size(bad); ++i) {
    const std::string msg = test::error_of([&] { quant::load_qdq_onnx_bytes(qdq_model_bytes(bad[i])); });
    EXPECT_NE(msg.find("QuantizeLinear node 'input_q'"), std::string::npos) << what[i] << ": " << msg;
    EXPECT_NE(msg.find(std::string("a ") + what[i] + " scale"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
  EXPECT_EQ(test::error_of([&] { quant::load_qdq_onnx_bytes(qdq_model_bytes(0.02f)); }), "");
}

TEST(QdqScales, PlacementCheckRefusesABadScaleInAGraph) {
  // A graph built in memory (no file): the check every engine and the simulator run.
  test::GraphBuilder b;
  const auto s = b.constant("s", HostTensor::scalar_f32(0.f));
  const auto z = b.constant("z", HostTensor(DType::I8, {}));
  const auto q = b.node("QuantizeLinear", {b.input("x", {1, 3, 8, 8}), s, z}, {}, "zero_q");
  b.output(b.conv(b.node("DequantizeLinear", {q, s, z}, {}, "zero_dq"), 3, 4, 3, 1, 1, true, "conv"));
  Graph g = b.build();
  passes::optimize(g);
  const std::string msg = test::error_of([&] { quant::check_qdq_placement(g); });
  EXPECT_NE(msg.find("'zero_q' has a zero scale"), std::string::npos) << msg;
}

TEST(QdqScales, TinyWeightsGetANormalScale) {
  // All-zero or vanishingly small weight channels must not produce the denormal scales refused above.
  HostTensor w(DType::F32, {2, 1, 1, 1});
  w.data<float>()[0] = 0.f;
  w.data<float>()[1] = 1e-39f;
  for (float s : quant::quantize_weights(w).scales) EXPECT_TRUE(std::isnormal(s)) << s;
}

TEST(CalibCacheValues, DenormalScaleIsRefusedNamingTheTensor) {
  TempDir dir("cache_denormal");
  std::ofstream(dir.file("c.cache")) << "# kestrel calibration cache v1\nmodel=ab imgsz=640\n/model.0/x: 1e-42\n";
  const std::string msg = test::error_of([&] { quant::read_cache(dir.file("c.cache")); });
  EXPECT_NE(msg.find("/model.0/x"), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 3"), std::string::npos) << msg;
}

class CacheChecks : public ::testing::Test {
 protected:
  void SetUp() override { test::write_images(images.str(), 3); }
  quant::CalibOptions options(bool with_images, quant::CalibAlgo algo = quant::CalibAlgo::Percentile) const {
    quant::CalibOptions o;
    if (with_images) o.images = images.str();
    o.algo = algo;
    o.cache_path = cache.file("calib.cache");
    o.model_id = "tiny";
    o.progress = false;
    return o;
  }
  TempDir images{"chk_images"}, cache{"chk_cache"};
};

TEST_F(CacheChecks, EmptyCacheIsRemadeWithImagesAndAnErrorWithout) {
  const Graph g = test::tiny_fused_graph();
  std::ofstream(cache.file("calib.cache")).flush();  // 0 bytes, as a full disk used to leave
  const std::string alone = test::error_of([&] { quant::calibrate(g, options(false)); });
  EXPECT_NE(alone.find("is empty"), std::string::npos) << alone;
  const quant::Calibration c = quant::calibrate(g, options(true));
  EXPECT_FALSE(c.from_cache);
  EXPECT_GT(std::filesystem::file_size(cache.file("calib.cache")), 0u);
  EXPECT_TRUE(quant::calibrate(g, options(false)).from_cache);
}

TEST_F(CacheChecks, ExplicitAlgorithmMustMatchACacheUsedAlone) {
  const Graph g = test::tiny_fused_graph();
  quant::calibrate(g, options(true, quant::CalibAlgo::Percentile));
  // Without --calib-algo the cache supplies its own algorithm ...
  EXPECT_TRUE(quant::calibrate(g, options(false, quant::CalibAlgo::MinMax)).from_cache);
  // ... but `--calib-algo minmax` with the percentile cache and no images is refused, not answered
  // with the percentile scales.
  quant::CalibOptions o = options(false, quant::CalibAlgo::MinMax);
  o.algo_explicit = true;
  const std::string msg = test::error_of([&] { quant::calibrate(g, o); });
  EXPECT_NE(msg.find("was made with percentile:99.99, not the requested minmax"), std::string::npos) << msg;
}

TEST_F(CacheChecks, ScalesDoNotDependOnTheBatchTheModelIsBoundTo) {
  // The same model bound to batch 1 and batch 2 (3 images: the second run has a padded last batch).
  quant::CalibOptions o = options(true);
  o.cache_path.clear();
  const quant::Calibration b1 = quant::calibrate(test::tiny_fused_graph(), o);
  Graph g2 = test::tiny_fused_graph();  // same seeded weights
  g2.value(g2.inputs.at(0)).shape[0] = 2;
  g2.infer_shapes();
  const quant::Calibration b2 = quant::calibrate(g2, o);
  ASSERT_EQ(b1.scales.size(), b2.scales.size());
  for (auto& [name, s] : b1.scales) EXPECT_EQ(s, b2.scales.at(name)) << name;
}

}  // namespace
