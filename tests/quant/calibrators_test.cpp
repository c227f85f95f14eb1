// The calibrators against hand-computed histograms and thresholds.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "kestrel/quant.h"

namespace {
using kestrel::quant::Histogram;
constexpr int kBins = Histogram::kBins;

Histogram from_values(const std::vector<float>& v) {
  Histogram h;
  h.add(v.data(), static_cast<int64_t>(v.size()));
  return h;
}

TEST(Histogram, BinsOverZeroToMaxAbs) {
  const Histogram h = from_values({1.0f, -2.0f, 0.0f, 0.25f});
  EXPECT_EQ(h.range(), 2.0);
  EXPECT_EQ(h.max_abs(), 2.0f);
  EXPECT_EQ(h.count(), 4u);
  EXPECT_EQ(h.bins()[0], 1u);         // 0
  EXPECT_EQ(h.bins()[256], 1u);       // 0.25 / (2 / 2048)
  EXPECT_EQ(h.bins()[1024], 1u);      // 1.0
  EXPECT_EQ(h.bins()[kBins - 1], 1u); // the maximum sits on the upper edge, in the last bin
}

TEST(Histogram, GrowsByPowersOfTwoMergingBins) {
  Histogram h = from_values({0.1f, 0.5f});
  EXPECT_EQ(h.range(), 0.5);
  h.add(std::vector<float>{1.5f}.data(), 1);  // needs 3x the range: grows 4x, 4 old bins per new one
  EXPECT_EQ(h.range(), 2.0);
  EXPECT_EQ(h.count(), 3u);
  EXPECT_EQ(h.max_abs(), 1.5f);
  // 0.1 was bin floor(0.1 / 0.5 * 2048) = 409, now 409 / 4 = 102 = floor(0.1 / 2 * 2048).
  EXPECT_EQ(h.bins()[102], 1u);
  EXPECT_EQ(h.bins()[1536], 1u);  // 1.5 / 2 * 2048
  uint64_t total = 0;
  for (auto c : h.bins()) total += c;
  EXPECT_EQ(total, 3u);
}

TEST(Histogram, AllZerosGiveScaleOne) {
  const Histogram h = from_values({0.f, 0.f, -0.f});
  EXPECT_EQ(h.range(), 0.0);
  EXPECT_EQ(h.bins()[0], 3u);
  for (auto algo : {kestrel::quant::CalibAlgo::Entropy, kestrel::quant::CalibAlgo::MinMax,
                    kestrel::quant::CalibAlgo::Percentile})
    EXPECT_EQ(kestrel::quant::compute_scale(h, algo), 1.f);
}

TEST(Histogram, RejectsNaN) {
  Histogram h;
  const float bad[] = {1.f, std::numeric_limits<float>::quiet_NaN()};
  EXPECT_THROW(h.add(bad, 2), kestrel::Error);
}

TEST(Calibrators, MinMaxIsMaxAbsOver127Exactly) {
  const Histogram h = from_values({0.5f, -3.3f, 2.0f, 1.0f});
  EXPECT_EQ(kestrel::quant::amax_minmax(h), static_cast<double>(3.3f));
  EXPECT_EQ(kestrel::quant::compute_scale(h, kestrel::quant::CalibAlgo::MinMax), 3.3f / 127.f);
}

TEST(Calibrators, PercentileOfAUniformHistogramIsExact) {
  // 100 values in each of the 2048 unit-wide bins: |x| is uniform on [0, 2048].
  Histogram h;
  h.add_counts(std::vector<uint64_t>(kBins, 100), 2048.0, 2048.f);
  EXPECT_DOUBLE_EQ(kestrel::quant::amax_percentile(h, 50.0), 1024.0);
  EXPECT_NEAR(kestrel::quant::amax_percentile(h, 99.99), 0.9999 * 2048.0, 1e-9);
  EXPECT_EQ(kestrel::quant::amax_percentile(h, 100.0), 2048.0);
  EXPECT_EQ(kestrel::quant::compute_scale(h, kestrel::quant::CalibAlgo::Percentile, 50.0), 1024.f / 127.f);
}

TEST(Calibrators, PercentileIgnoresRareOutliers) {
  // 9,999 values at 1.0 (inside [0, 100]) and one at 100: the 99.99th percentile is in 1.0's bin.
  std::vector<float> v(9999, 1.0f);
  v.push_back(100.f);
  const Histogram h = from_values(v);
  const double amax = kestrel::quant::amax_percentile(h, 99.99);
  EXPECT_GE(amax, 1.0 - h.bin_width());
  EXPECT_LE(amax, 1.0 + h.bin_width());
}

// Straightforward KL-divergence threshold search written from the description (numpy's linspace and
// digitize, scipy's entropy), independent of the library's incremental implementation.
int brute_force_entropy(std::vector<uint64_t> counts) {
  const int n = static_cast<int>(counts.size());
  std::vector<double> bins(counts.begin(), counts.end());
  bins[0] = bins[1];
  double best = INFINITY;
  int best_i = n;
  for (int i = 128; i <= n; ++i) {
    std::vector<double> p(bins.begin(), bins.begin() + i);
    for (int j = i; j < n; ++j) p[i - 1] += bins[j];
    std::vector<double> edges(129);
    for (int k = 0; k <= 128; ++k) edges[k] = static_cast<double>(i) * k / 128.0;
    std::vector<int> level(i);
    int k = 0;
    for (int j = 0; j < i; ++j) {
      while (k + 1 <= 128 && edges[k + 1] <= j) ++k;  // digitize: edges[k] <= j < edges[k + 1]
      level[j] = bins[j] == 0 ? -1 : k;
    }
    std::vector<double> sum(128, 0), cnt(128, 0), q(i, 0);
    for (int j = 0; j < i; ++j)
      if (level[j] >= 0) sum[level[j]] += bins[j], cnt[level[j]] += 1;
    for (int j = 0; j < i; ++j)
      if (level[j] >= 0) q[j] = sum[level[j]] / cnt[level[j]];
    double ps = 0, qs = 0;
    for (int j = 0; j < i; ++j) ps += p[j], qs += q[j];
    double kl = 0;
    for (int j = 0; j < i; ++j) {
      if (p[j] == 0) continue;
      if (q[j] == 0) {
        kl = INFINITY;
        break;
      }
      kl += p[j] / ps * std::log((p[j] / ps) / (q[j] / qs));
    }
    if (kl <= best) best = kl, best_i = i;
  }
  return best_i;
}

TEST(Calibrators, EntropyMatchesBruteForceKL) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 3; ++trial) {
    // SiLU-like activations: mostly small, a long tail, a few large outliers.
    std::normal_distribution<float> normal(0.f, 1.f + trial);
    std::vector<float> v(200000);
    for (auto& x : v) x = normal(rng);
    for (int k = 0; k < 20; ++k) v[static_cast<size_t>(k)] = 25.f + k;
    const Histogram h = from_values(v);
    const int expected = brute_force_entropy(h.bins());
    EXPECT_EQ(kestrel::quant::entropy_threshold_bins(h.bins()), expected) << "trial " << trial;
    EXPECT_DOUBLE_EQ(kestrel::quant::amax_entropy(h), expected * h.bin_width());
  }
}

TEST(Calibrators, EntropyKeepsTheFullRangeOfAUniformTensor) {
  // Uniform |x|: any threshold below the maximum folds mass into its last bin, which Q cannot model,
  // while the full range quantizes to Q == P (KL 0). The optimum is the whole range.
  Histogram h;
  h.add_counts(std::vector<uint64_t>(kBins, 50), 4.0, 4.f);
  EXPECT_EQ(kestrel::quant::entropy_threshold_bins(h.bins()), kBins);
  EXPECT_DOUBLE_EQ(kestrel::quant::amax_entropy(h), 4.0);
}

TEST(Calibrators, EntropyClipsOutliersThatMinMaxKeeps) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> v(100000);
  for (auto& x : v) x = normal(rng);
  v[0] = 60.f;  // one outlier: min-max spends most of the int8 range on it
  const Histogram h = from_values(v);
  EXPECT_EQ(kestrel::quant::amax_minmax(h), 60.0);
  EXPECT_LT(kestrel::quant::amax_entropy(h), 15.0);
  EXPECT_GT(kestrel::quant::amax_entropy(h), 2.0);
}

TEST(Calibrators, AlgorithmNames) {
  EXPECT_EQ(kestrel::quant::parse_calib_algo("percentile"), kestrel::quant::CalibAlgo::Percentile);
  EXPECT_STREQ(kestrel::quant::calib_algo_name(kestrel::quant::CalibAlgo::MinMax), "minmax");
  EXPECT_THROW(kestrel::quant::parse_calib_algo("kl"), kestrel::UsageError);
}

TEST(Weights, SymmetricPerOutputChannel) {
  const kestrel::HostTensor w = kestrel::HostTensor::from_f32({3, 1, 1, 2}, {0.5f, -1.27f, 0.f, 0.f, 2.54f, 1.0f});
  const auto q = kestrel::quant::quantize_weights(w);
  ASSERT_EQ(q.scales.size(), 3u);
  EXPECT_EQ(q.scales[0], 1.27f / 127.f);
  EXPECT_EQ(q.scales[1], 1.f);  // an all-zero channel
  EXPECT_EQ(q.scales[2], 2.54f / 127.f);
  const int8_t* c = q.q.data<int8_t>();
  EXPECT_EQ(c[0], static_cast<int8_t>(std::nearbyint(0.5f / (1.27f / 127.f))));
  EXPECT_EQ(c[1], -127);
  EXPECT_EQ(c[2], 0);
  EXPECT_EQ(c[4], 127);
  EXPECT_EQ(c[5], static_cast<int8_t>(std::nearbyint(1.0f / (2.54f / 127.f))));
}

}  // namespace

namespace {

// Uniform |x| on [0, R]: rounding costs a^3 / (12 * 127^2 * R) and clipping (R - a)^3 / (3R); the sum is
// least at R - a = a / 254, i.e. a = R * 254 / 255 (about 8 of the 2048 bins below R).
TEST(Calibrators, MseOfAUniformHistogramClipsAlmostNothing) {
  Histogram h;
  h.add_counts(std::vector<uint64_t>(kBins, 50), 4.0, 4.f);
  const double a = kestrel::quant::amax_mse(h);
  EXPECT_NEAR(a, 4.0 * 254 / 255, 2 * h.bin_width());
  EXPECT_EQ(kestrel::quant::compute_scale(h, kestrel::quant::CalibAlgo::Mse), static_cast<float>(a) / 127.f);
  EXPECT_EQ(kestrel::quant::parse_calib_algo("mse"), kestrel::quant::CalibAlgo::Mse);
  EXPECT_STREQ(kestrel::quant::calib_algo_name(kestrel::quant::CalibAlgo::Mse), "mse");
}

// One outlier (60) among 100000 N(0, 1) values. Rounding costs each value s^2 / 12 with s = a / 127,
// clipping costs the outlier (60 - a)^2: the sum 1e5 a^2 / (12 * 127^2) + (60 - a)^2 is least at
// a = 60 / (1 + 1e5 / (12 * 127^2)) = 39.6. Squared error keeps a rare large value's weight (unlike
// a percentile), and still clips it.
TEST(Calibrators, MseWeighsAnOutlierByItsSquaredError) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> v(100000);
  for (auto& x : v) x = normal(rng);
  v[0] = 60.f;
  const Histogram h = from_values(v);
  EXPECT_NEAR(kestrel::quant::amax_mse(h), 60 / (1 + 1e5 / (12.0 * 127 * 127)), 1.5);
  EXPECT_EQ(kestrel::quant::amax_mse(Histogram{}), 0.0);
}

}  // namespace
