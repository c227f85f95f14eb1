// The calibration cache: round trip, reuse when every key matches, refusal naming the key otherwise.
#include <gtest/gtest.h>

#include <fstream>

#include "quant_test_util.h"

namespace {
using namespace kestrel;
using test::TempDir;

quant::CacheKey sample_key() {
  return {"0123456789abcdef", 640, quant::kLetterboxName, "percentile:99.99", 128, "fedcba9876543210"};
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  return {std::istreambuf_iterator<char>(f), {}};
}

TEST(CalibCache, RoundTripIsExactAndReadable) {
  TempDir dir("cache");
  const std::map<std::string, float> scales = {
      {"/model.0/conv/Conv_output_0", 1.f / 3.f}, {"images", 1.f / 127.f}, {"odd:name", 3.4028e38f}, {"tiny", 1e-30f}};
  quant::write_cache(dir.file("c.txt"), sample_key(), scales);
  const std::string text = read_text(dir.file("c.txt"));
  EXPECT_EQ(text.rfind("# kestrel calibration cache v1\nmodel=0123456789abcdef imgsz=640 letterbox=", 0), 0u) << text;
  EXPECT_NE(text.find("algorithm=percentile:99.99 images=128 image_set=fedcba9876543210\n"), std::string::npos);
  EXPECT_NE(text.find("\nimages: 0.00787401572\n"), std::string::npos) << text;

  const quant::CacheFile c = quant::read_cache(dir.file("c.txt"));
  EXPECT_EQ(c.scales, scales);  // bit-exact floats
  EXPECT_EQ(c.key.model_hash, "0123456789abcdef");
  EXPECT_EQ(c.key.imgsz, 640);
  EXPECT_EQ(c.key.algorithm, "percentile:99.99");
  EXPECT_EQ(c.key.image_count, 128);
  EXPECT_NO_THROW(quant::check_cache_key("c.txt", c.key, sample_key()));
}

TEST(CalibCache, RefusalNamesTheKeyThatDiffers) {
  const quant::CacheKey want = sample_key();
  quant::CacheKey other = want;
  other.model_hash = "1111111111111111";
  const std::string msg = test::error_of([&] { quant::check_cache_key("c.txt", other, want); });
  EXPECT_NE(msg.find("another model"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1111111111111111"), std::string::npos) << msg;
  other = want;
  other.algorithm = "minmax";
  EXPECT_NE(test::error_of([&] { quant::check_cache_key("c.txt", other, want); }).find("another algorithm: minmax"),
            std::string::npos);
  other = want;
  other.imgsz = 320;
  EXPECT_NE(test::error_of([&] { quant::check_cache_key("c.txt", other, want); }).find("imgsz 320"), std::string::npos);
  other = want;
  other.image_set_hash = "0";
  EXPECT_NE(test::error_of([&] { quant::check_cache_key("c.txt", other, want); }).find("image set"), std::string::npos);
}

TEST(CalibCache, MalformedFilesAreOneLineErrors) {
  TempDir dir("cache_bad");
  std::ofstream(dir.file("not.txt")) << "hello\n";
  EXPECT_NE(test::error_of([&] { quant::read_cache(dir.file("not.txt")); }).find("not a kestrel calibration cache"),
            std::string::npos);
  std::ofstream(dir.file("bad.txt")) << "# kestrel calibration cache v1\nmodel=ab imgsz=640\nx: -1\n";
  EXPECT_NE(test::error_of([&] { quant::read_cache(dir.file("bad.txt")); }).find("line 3"), std::string::npos);
  EXPECT_NE(test::error_of([&] { quant::read_cache(dir.file("missing.txt")); }).find("cannot read"), std::string::npos);
}

class CalibrateWithCache : public ::testing::Test {
 protected:
  void SetUp() override { test::write_images(images.str(), 3); }
  quant::CalibOptions options(quant::CalibAlgo algo = quant::CalibAlgo::Entropy) const {
    quant::CalibOptions o;
    o.images = images.str();
    o.algo = algo;
    o.cache_path = cache.file("calib.cache");
    o.progress = false;
    return o;
  }
  TempDir images{"cal_images"}, cache{"cal_cache"};
};

TEST_F(CalibrateWithCache, WrittenThenReused) {
  const Graph g = test::tiny_fused_graph();
  const quant::Calibration first = quant::calibrate(g, options());
  EXPECT_FALSE(first.from_cache);
  EXPECT_EQ(first.images.size(), 3u);
  EXPECT_EQ(first.scales.size(), 3u);  // the inputs of convs a, b and c
  const quant::Calibration second = quant::calibrate(g, options());
  EXPECT_TRUE(second.from_cache);
  EXPECT_EQ(second.scales, first.scales);
  EXPECT_EQ(second.key.model_hash, first.key.model_hash);
}

TEST_F(CalibrateWithCache, RefusedForAnotherModel) {
  const Graph g = test::tiny_fused_graph();
  quant::calibrate(g, options());
  Graph other = g;  // the same architecture with one weight changed is another model
  for (auto& n : other.nodes)
    if (n.name == "b") {
      HostTensor w = other.value(n.inputs[1]).constant->clone();
      w.data<float>()[0] += 0.5f;
      other.value(n.inputs[1]).constant = w;
    }
  const std::string msg = test::error_of([&] { quant::calibrate(other, options()); });
  EXPECT_NE(msg.find("was made for another model"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
}

TEST_F(CalibrateWithCache, RefusedForAnotherAlgorithm) {
  const Graph g = test::tiny_fused_graph();
  quant::calibrate(g, options(quant::CalibAlgo::Entropy));
  const std::string msg = test::error_of([&] { quant::calibrate(g, options(quant::CalibAlgo::MinMax)); });
  EXPECT_NE(msg.find("another algorithm: entropy, not minmax"), std::string::npos) << msg;
}

TEST_F(CalibrateWithCache, RefusedForAnotherImageSet) {
  const Graph g = test::tiny_fused_graph();
  quant::calibrate(g, options());
  test::write_images(images.str(), 4, 40, 30, 9);  // overwrites the three, adds a fourth
  const std::string msg = test::error_of([&] { quant::calibrate(g, options()); });
  EXPECT_NE(msg.find("another image count: 3, not 4"), std::string::npos) << msg;
}

TEST(GraphHash, IgnoresPrecisionAnnotationsButNotWeights) {
  Graph g = test::tiny_fused_graph();
  const std::string h = quant::graph_hash(g);
  g.nodes[0].attrs.set("kestrel_precision", std::string("fp16"));
  EXPECT_EQ(quant::graph_hash(g), h);
  HostTensor w = g.value(g.nodes[0].inputs[1]).constant->clone();
  w.data<float>()[3] = 7.f;
  g.value(g.nodes[0].inputs[1]).constant = w;
  EXPECT_NE(quant::graph_hash(g), h);
}

}  // namespace
