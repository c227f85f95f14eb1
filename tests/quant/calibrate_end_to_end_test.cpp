// calibrate() end to end against scales computed independently: a hand-made image set (PNGs of the
// model's input size, so the letterbox is the identity and the input tensor is the pixels / 255 in RGB
// order), the conv inputs computed by running the *unfused* graph (plain Conv, Sigmoid, Mul: other
// kernels than the fused kestrel.Conv that calibration runs), and each scale from its definition:
//   minmax      max|x| / 127, exactly
//   percentile  the p-th percentile of |x| over every value seen (sorted, not binned) / 127: between
//               the sorted neighbours of that rank, widened by one histogram bin (the library
//               interpolates inside a 2048-bin histogram whose range is below 2 max|x|)
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "kestrel/cpu_backend.h"
#include "quant_test_util.h"

namespace {

using namespace kestrel;

constexpr int64_t kSize = 16;
constexpr int kImages = 3;

// The unfused form of test::tiny_fused_graph (same weights: GraphBuilder's are deterministic).
Graph tiny_plain_graph() {
  test::GraphBuilder b;
  const std::string x = b.input("images", {1, 3, kSize, kSize});
  const std::string a = b.silu(b.conv(x, 3, 8, 3, 1, 1, true, "a"));
  const std::string c1 = b.silu(b.conv(a, 8, 8, 3, 2, 1, true, "b"));
  b.output(b.conv(c1, 8, 4, 1, 1, 1, true, "c"));
  Graph g = b.build();
  g.infer_shapes();
  return g;
}

struct HandMade {
  test::TempDir dir{"calib_e2e"};
  std::vector<HostTensor> inputs;  // what the images must become: RGB / 255, NCHW
  HandMade() {
    std::mt19937 rng(5);
    for (int i = 0; i < kImages; ++i) {
      image::Image img = image::Image::filled(kSize, kSize);
      // A different brightness range per image, so the images do not all look alike to a histogram.
      const int hi = 120 + 60 * i;
      for (auto& v : img.bgr) v = static_cast<uint8_t>(rng() % hi);
      char name[32];
      std::snprintf(name, sizeof name, "img_%d.png", i);
      image::write_image(dir.file(name), img);
      HostTensor t(DType::F32, {1, 3, kSize, kSize});
      for (int c = 0; c < 3; ++c)
        for (int y = 0; y < kSize; ++y)
          for (int x = 0; x < kSize; ++x)
            t.data<float>()[(c * kSize + y) * kSize + x] = static_cast<float>(img.pixel(x, y)[2 - c]) / 255.f;
      inputs.push_back(t);
    }
  }
};

// Every value each named tensor takes over the images, from the plain graph.
std::map<std::string, std::vector<float>> values_of(const Graph& plain, const std::vector<HostTensor>& inputs,
                                                    const std::vector<std::string>& names) {
  std::map<std::string, std::vector<float>> v;
  CpuExecutor exec(plain);
  std::vector<std::string> computed;  // the graph input is the image tensor itself
  for (const std::string& n : names)
    if (n != plain.inputs[0]) computed.push_back(n);
  for (const HostTensor& x : inputs) {
    const auto xs = x.span<float>();
    v[plain.inputs[0]].insert(v[plain.inputs[0]].end(), xs.begin(), xs.end());
    std::vector<HostTensor> kept;
    exec.run({x}, computed, &kept);
    EXPECT_EQ(kept.size(), computed.size());
    for (size_t i = 0; i < kept.size() && i < computed.size(); ++i) {
      const auto s = kept[i].span<float>();
      v[computed[i]].insert(v[computed[i]].end(), s.begin(), s.end());
    }
  }
  return v;
}

quant::Calibration calibrate(const HandMade& h, quant::CalibAlgo algo, double percentile = 99.99) {
  quant::CalibOptions co;
  co.images = h.dir.str();
  co.max_images = kImages;
  co.images_explicit = true;
  co.algo = algo;
  co.percentile = percentile;
  co.progress = false;
  return quant::calibrate(test::tiny_fused_graph(kSize), co);
}

TEST(CalibrateEndToEnd, ScalesMatchIndependentComputation) {
  const HandMade h;
  const Graph fused = test::tiny_fused_graph(kSize);
  const std::vector<std::string> names = quant::quantizable_tensors(fused);
  ASSERT_EQ(names.size(), 3u);  // the inputs of convs a, b and c
  EXPECT_EQ(names[0], "images");
  const auto values = values_of(tiny_plain_graph(), h.inputs, names);

  const quant::Calibration minmax = calibrate(h, quant::CalibAlgo::MinMax);
  EXPECT_EQ(minmax.images.size(), static_cast<size_t>(kImages));
  ASSERT_EQ(minmax.scales.size(), names.size());
  for (const std::string& n : names) {
    float amax = 0;
    for (float x : values.at(n)) amax = std::max(amax, std::fabs(x));
    ASSERT_GT(amax, 0.f) << n;
    std::printf("%s: max|x| %.6g, minmax scale %.6g\n", n.c_str(), amax, minmax.scales.at(n));
    EXPECT_FLOAT_EQ(minmax.scales.at(n), amax / 127.f) << n;
  }
  // The image's largest pixel decides the input's scale: (120 + 60 * 2 - 1) / 255 at most.
  EXPECT_LE(minmax.scales.at("images") * 127.f, 239.f / 255.f + 1e-6f);

  for (const double p : {99.99, 99.0, 90.0}) {
    const quant::Calibration pc = calibrate(h, quant::CalibAlgo::Percentile, p);
    for (const std::string& n : names) {
      std::vector<float> a = values.at(n);
      for (float& x : a) x = std::fabs(x);
      std::sort(a.begin(), a.end());
      const double rank = p / 100.0 * static_cast<double>(a.size() - 1);
      const size_t lo = static_cast<size_t>(std::floor(rank));
      const double exact = a[lo] + (rank - lo) * (a[std::min(lo + 1, a.size() - 1)] - a[lo]);
      const double bin = 2.0 * a.back() / quant::Histogram::kBins;
      const double got = pc.scales.at(n) * 127.0;
      std::printf("%s p%.2f: exact %.6g, calibrated amax %.6g (bin %.3g)\n", n.c_str(), p, exact, got, bin);
      // Rank conventions differ by one value (p * N or p * (N - 1)), and the histogram places a value
      // anywhere in its bin: the calibrated threshold lies between the sorted neighbours of the exact
      // rank, widened by one bin.
      const double below = a[lo > 0 ? lo - 1 : 0], above = a[std::min(lo + 2, a.size() - 1)];
      EXPECT_GE(got, below - bin * 1.001) << n << " percentile " << p;
      EXPECT_LE(got, above + bin * 1.001) << n << " percentile " << p;
      EXPECT_LE(got, a.back() * 1.0000001) << n << ": beyond max|x|";
    }
  }
}

// The scales depend on the images: dropping the brightest image lowers the input's scale by exactly
// what its pixels say.
TEST(CalibrateEndToEnd, FewerImagesGiveTheirOwnScale) {
  const HandMade h;
  quant::CalibOptions co;
  co.images = h.dir.str();
  co.max_images = 2;  // img_0 and img_1 (sorted): brightness below 120 and 180
  co.images_explicit = true;
  co.algo = quant::CalibAlgo::MinMax;
  co.progress = false;
  const quant::Calibration c = quant::calibrate(test::tiny_fused_graph(kSize), co);
  float amax = 0;
  for (int i = 0; i < 2; ++i)
    for (float x : h.inputs[i].span<float>()) amax = std::max(amax, x);
  EXPECT_FLOAT_EQ(c.scales.at("images"), amax / 127.f);
  EXPECT_LE(amax, 179.f / 255.f + 1e-6f);
}

}  // namespace
