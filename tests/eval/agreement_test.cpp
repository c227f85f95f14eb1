// Agreement with a reference engine's detections and the bootstrap intervals: hand-made cases whose
// values are worked out on paper, and the bootstrap replicate checked against the full evaluator.
#include <gtest/gtest.h>

#include <random>

#include "eval/coco_eval.h"
#include "kestrel/agreement.h"

namespace ke = kestrel::eval;

namespace {

const std::vector<ke::Category> kCats{{0, "a"}, {1, "b"}};

ke::Detection det(int64_t image, int cat, double x, double y, double w, double h, double score) {
  return {image, cat, x, y, w, h, score};
}

TEST(Agreement, IdenticalDetectionsScoreOne) {
  const std::vector<ke::Detection> ref{det(1, 0, 10, 20, 100, 80, 0.9),  det(1, 1, 200, 50, 40, 60, 0.6),
                                       det(2, 0, 300, 300, 50, 50, 0.3),  det(2, 1, 0, 0, 30, 30, 0.25),
                                       det(2, 0, 100, 100, 20, 20, 0.1),  det(1, 1, 400, 10, 10, 10, 0.002)};
  const ke::Agreement a = ke::agreement({1, 2}, kCats, ref, ref, {0});
  EXPECT_EQ(a.reference_boxes, 4);  // scores >= 0.25 only
  EXPECT_EQ(a.images, 2);
  // Every reference box is found first (higher scores), the low-score extras rank after them.
  EXPECT_DOUBLE_EQ(a.value, 1.0);
  EXPECT_FALSE(a.ci.valid());  // no resamples asked for

  const ke::Agreement b = ke::agreement({1, 2}, kCats, ref, ref, {200});
  EXPECT_DOUBLE_EQ(b.ci.lo, 1.0);
  EXPECT_DOUBLE_EQ(b.ci.hi, 1.0);
  EXPECT_EQ(b.resamples, 200);
}

// IoU of a 100x100 box with itself moved by d pixels along x: (100 - d) * 100 / (20000 - (100 - d) * 100).
// d = 10: 9000 / 11000 = 0.818, a match at the IoU thresholds .50 ... .80 (7 of 10): AP 0.7.
// d = 20: 8000 / 12000 = 0.667, a match at .50 ... .65 (4 of 10): AP 0.4.
// One box per class, so the mean over the two classes is 0.55.
TEST(Agreement, ShiftedBoxesGiveTheValueWorkedOutByHand) {
  const std::vector<ke::Detection> ref{det(7, 0, 100, 100, 100, 100, 0.8), det(7, 1, 300, 200, 100, 100, 0.7)};
  std::vector<ke::Detection> cand{det(7, 0, 110, 100, 100, 100, 0.8)};
  EXPECT_NEAR(ke::agreement({7}, kCats, ref, {det(7, 0, 110, 100, 100, 100, 0.8), det(7, 1, 300, 200, 100, 100, 0.7)}, {0}).value,
              (0.7 + 1.0) / 2, 1e-12);
  cand.push_back(det(7, 1, 320, 200, 100, 100, 0.7));
  EXPECT_NEAR(ke::agreement({7}, kCats, ref, cand, {0}).value, (0.7 + 0.4) / 2, 1e-12);
  // A missed class scores 0 for it: a class that the reference found and the candidate did not.
  EXPECT_NEAR(ke::agreement({7}, kCats, ref, {cand[0]}, {0}).value, 0.7 / 2, 1e-12);
}

TEST(Agreement, ReferenceWithoutBoxesHasNoValue) {
  const ke::Agreement a = ke::agreement({1}, kCats, {det(1, 0, 0, 0, 10, 10, 0.2)}, {}, {50});
  EXPECT_EQ(a.value, -1);
  EXPECT_EQ(a.reference_boxes, 0);
  EXPECT_FALSE(a.ci.valid());
}

TEST(Agreement, DetectionsOfUnknownImagesAreRefused) {
  EXPECT_THROW(ke::agreement({1}, kCats, {det(2, 0, 0, 0, 10, 10, 0.9)}, {}, {0}), kestrel::Error);
  EXPECT_THROW(ke::agreement({1}, kCats, {det(1, 0, 0, 0, 10, 10, 0.9)}, {det(3, 0, 0, 0, 10, 10, 0.9)}, {0}),
               kestrel::Error);
}

TEST(Bootstrap, PercentileIntervalIsNumpys) {
  // numpy.percentile([5, 1, 4, 2, 3], [25, 75]) == [2, 4]; of 0..100 at [2.5, 97.5]: [2.5, 97.5].
  ke::Interval i = ke::percentile_interval({5, 1, 4, 2, 3}, 0.5);
  EXPECT_DOUBLE_EQ(i.lo, 2);
  EXPECT_DOUBLE_EQ(i.hi, 4);
  std::vector<double> v;
  for (int k = 100; k >= 0; --k) v.push_back(k);
  i = ke::percentile_interval(v, 0.95);
  EXPECT_NEAR(i.lo, 2.5, 1e-12);  // (1 - 0.95) / 2 is 0.025 + 2e-17 in binary
  EXPECT_NEAR(i.hi, 97.5, 1e-12);
  EXPECT_THROW(ke::percentile_interval({}, 0.95), kestrel::Error);
}

TEST(Bootstrap, ResamplesAreReproducibleAndInRange) {
  const auto a = ke::bootstrap_resamples(7, {50, 99});
  const auto b = ke::bootstrap_resamples(7, {50, 99});
  const auto c = ke::bootstrap_resamples(7, {50, 100});
  ASSERT_EQ(a.size(), 50u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::vector<int> seen(7, 0);
  for (auto& r : a) {
    ASSERT_EQ(r.size(), 7u);
    for (int i : r) {
      ASSERT_GE(i, 0);
      ASSERT_LT(i, 7);
      ++seen[static_cast<size_t>(i)];
    }
  }
  for (int s : seen) EXPECT_GT(s, 20);  // 350 draws over 7 images: 50 each on average
}

// A bootstrap replicate is scored as the evaluator scores the resampled data set itself: every drawn
// image a distinct image (copies under new ids, in draw order), ground truth and detections with it.
TEST(Bootstrap, ReplicateEqualsTheEvaluatorOnTheResampledSet) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(0, 1);
  const int images = 12;
  std::vector<int64_t> ids;
  std::vector<ke::GtBox> gt;
  std::vector<ke::Detection> dets;
  for (int i = 0; i < images; ++i) {
    const int64_t id = 1000 + 3 * i;  // not in draw order, not contiguous
    ids.push_back(id);
    for (int g = 0; g < 1 + i % 4; ++g) {
      const double x = 600 * u(rng), y = 400 * u(rng), w = 5 + 150 * u(rng), h = 5 + 150 * u(rng);
      const int cat = g % 2;
      gt.push_back({static_cast<int64_t>(gt.size()) + 1, id, cat, x, y, w, h, w * h, i == 3 && g == 0});
      if (u(rng) < 0.8)
        dets.push_back(det(id, cat, x + 20 * (u(rng) - 0.5), y + 20 * (u(rng) - 0.5), w, h, std::round(u(rng) * 100) / 100));
      dets.push_back(det(id, 1 - cat, 600 * u(rng), 400 * u(rng), 40, 40, std::round(u(rng) * 100) / 100));
    }
  }
  const ke::detail::ApByImage scorer(ids, kCats, gt, dets);
  EXPECT_DOUBLE_EQ(scorer.ap(), ke::evaluate_bbox(ids, kCats, gt, dets).stats[0]);
  for (const auto& r : ke::bootstrap_resamples(images, {6, 3})) {
    std::vector<int64_t> rids;
    std::vector<ke::GtBox> rgt;
    std::vector<ke::Detection> rdets;
    for (size_t j = 0; j < r.size(); ++j) {
      const int64_t from = ids[static_cast<size_t>(r[j])], to = static_cast<int64_t>(j) + 1;
      rids.push_back(to);
      for (auto g : gt)
        if (g.image_id == from) {
          g.image_id = to;
          g.id = static_cast<int64_t>(rgt.size()) + 1;
          rgt.push_back(g);
        }
      for (auto d : dets)
        if (d.image_id == from) {
          d.image_id = to;
          rdets.push_back(d);
        }
    }
    EXPECT_EQ(scorer.ap(r), ke::evaluate_bbox(rids, kCats, rgt, rdets).stats[0]);
  }
}

// 100 images with one reference box each; the candidate finds exactly half of them. Agreement: recall
// 0.5 at precision 1, i.e. the 51 recall thresholds 0, .01 ... .50 of 101: 51/101. A resample holds k
// found images, k ~ Binomial(100, 1/2), and scores (k + 1) / 101 (k / 101 where k/100 rounds one ulp
// above the threshold), so the 95 % interval is close to k in [40, 60]: [41/101, 61/101] = [0.41, 0.60].
TEST(Bootstrap, IntervalOfAConstructedCase) {
  std::vector<int64_t> ids;
  std::vector<ke::Detection> ref, cand;
  for (int i = 1; i <= 100; ++i) {
    ids.push_back(i);
    ref.push_back(det(i, 0, 10, 10, 50, 50, 0.9));
    if (i % 2) cand.push_back(det(i, 0, 10, 10, 50, 50, 0.9));
  }
  const ke::Agreement a = ke::agreement(ids, kCats, ref, cand, {2000, 11});
  EXPECT_NEAR(a.value, 51.0 / 101, 1e-12);
  EXPECT_EQ(a.resamples, 2000);
  EXPECT_NEAR(a.ci.lo, 41.0 / 101, 0.025);
  EXPECT_NEAR(a.ci.hi, 61.0 / 101, 0.025);
  EXPECT_LT(a.ci.lo, a.value);
  EXPECT_GT(a.ci.hi, a.value);
  // The same images as a dataset (what compare and the tests hold): the same value and interval.
  ke::Dataset images;
  images.categories = kCats;
  for (int64_t id : ids) images.images.push_back({id, "", 640, 640});
  const ke::Agreement d = ke::agreement(images, ref, cand, {2000, 11});
  EXPECT_EQ(d.value, a.value);
  EXPECT_EQ(d.ci.lo, a.ci.lo);
  EXPECT_EQ(d.ci.hi, a.ci.hi);
}

// mAP deltas: two engines scored on the same resamples. Identical detections differ by exactly 0 on
// every resample; a candidate that loses half the boxes loses 0.5 recall, and its delta interval lies
// entirely below zero.
TEST(Bootstrap, MapDeltaIsPaired) {
  std::vector<int64_t> ids;
  std::vector<ke::GtBox> gt;
  std::vector<ke::Detection> ref, cand;
  for (int i = 1; i <= 40; ++i) {
    ids.push_back(i);
    gt.push_back({i, i, 1, 10, 10, 50, 50, 2500, false});
    ref.push_back(det(i, 1, 10, 10, 50, 50, 0.9));
    if (i % 2) cand.push_back(det(i, 1, 10, 10, 50, 50, 0.9));
  }
  const ke::MapDelta same = ke::map_delta(ids, kCats, gt, ref, ref, {300});
  EXPECT_DOUBLE_EQ(same.delta, 0.0);
  EXPECT_DOUBLE_EQ(same.ci.lo, 0.0);
  EXPECT_DOUBLE_EQ(same.ci.hi, 0.0);
  const ke::MapDelta half = ke::map_delta(ids, kCats, gt, ref, cand, {300});
  EXPECT_DOUBLE_EQ(half.reference, 1.0);
  EXPECT_NEAR(half.candidate, 51.0 / 101, 1e-12);
  EXPECT_NEAR(half.delta, 51.0 / 101 - 1, 1e-12);
  EXPECT_LT(half.ci.hi, 0.0);
  EXPECT_LT(half.ci.lo, half.delta);
  EXPECT_GT(half.ci.hi, half.delta);
  EXPECT_EQ(half.resamples, 300);
}

}  // namespace
