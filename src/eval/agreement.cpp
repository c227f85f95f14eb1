// Agreement with a reference engine's detections, and percentile-bootstrap intervals over images.
#include "kestrel/agreement.h"

#include <algorithm>
#include <random>
#include <unordered_set>

#include "coco_eval.h"

namespace kestrel::eval {

std::vector<std::vector<int>> bootstrap_resamples(int n, const BootstrapOptions& options) {
  KESTREL_CHECK(n > 0, "bootstrap: no images to resample");
  KESTREL_CHECK(options.resamples >= 0, "bootstrap: negative number of resamples");
  std::mt19937_64 rng(options.seed);
  std::vector<std::vector<int>> out(static_cast<size_t>(options.resamples), std::vector<int>(static_cast<size_t>(n)));
  for (auto& r : out)
    for (int& i : r)  // Lemire's multiply-shift: uniform up to a bias of n / 2^64
      i = static_cast<int>((static_cast<unsigned __int128>(rng()) * static_cast<unsigned>(n)) >> 64);
  return out;
}

Interval percentile_interval(std::vector<double> values, double level) {
  KESTREL_CHECK(!values.empty(), "bootstrap: no replicate to take an interval of");
  KESTREL_CHECK(level > 0 && level < 1, "bootstrap: the interval level must lie in (0, 1)");
  std::sort(values.begin(), values.end());
  // numpy.percentile, method 'linear': the value at fractional rank q (n - 1).
  auto at = [&](double q) {
    const double pos = q * static_cast<double>(values.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, values.size() - 1);
    const double frac = pos - static_cast<double>(lo);
    return values[lo] + (values[hi] - values[lo]) * frac;
  };
  return {at((1 - level) / 2), at((1 + level) / 2)};
}

std::vector<GtBox> agreement_ground_truth(const std::vector<Detection>& reference, double conf) {
  std::vector<GtBox> gt;
  for (const Detection& d : reference) {
    if (!(d.score >= conf)) continue;
    GtBox g;
    g.id = static_cast<int64_t>(gt.size()) + 1;  // never 0: pycocotools counts a match by a non-zero id
    g.image_id = d.image_id;
    g.category_id = d.category_id;
    g.x = d.x, g.y = d.y, g.w = d.w, g.h = d.h;
    g.area = d.w * d.h;
    gt.push_back(g);
  }
  return gt;
}

namespace {
// Values of `score` on every resample, dropping replicates where it is undefined (-1).
template <typename Score>
std::vector<double> replicate(const std::vector<std::vector<int>>& resamples, Score score) {
  std::vector<double> v(resamples.size());
#pragma omp parallel for schedule(dynamic, 8)
  for (size_t i = 0; i < resamples.size(); ++i) v[i] = score(resamples[i]);
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return std::isnan(x); }), v.end());
  return v;
}
}  // namespace

Agreement agreement(const std::vector<int64_t>& image_ids, const std::vector<Category>& categories,
                    const std::vector<Detection>& reference, const std::vector<Detection>& candidate,
                    const BootstrapOptions& options) {
  const std::vector<GtBox> gt = agreement_ground_truth(reference);
  // Ground truth of an image not listed would be dropped without a word (the candidate's detections
  // are checked by the evaluator, as loadRes does).
  const std::unordered_set<int64_t> listed(image_ids.begin(), image_ids.end());
  for (const GtBox& g : gt)
    if (!listed.count(g.image_id))
      fail("reference detections do not correspond to the images: image id ", g.image_id, " is not among them");
  const detail::ApByImage scorer(image_ids, categories, gt, candidate);
  Agreement a;
  a.images = scorer.images();
  a.reference_boxes = static_cast<int>(gt.size());
  a.value = scorer.ap();
  if (a.value < 0 || options.resamples == 0) return a;
  const auto values = replicate(bootstrap_resamples(a.images, options), [&](const std::vector<int>& r) {
    const double v = scorer.ap(r);
    return v < 0 ? NAN : v;
  });
  a.resamples = static_cast<int>(values.size());
  if (!values.empty()) a.ci = percentile_interval(values, options.level);
  return a;
}

MapDelta map_delta(const std::vector<int64_t>& image_ids, const std::vector<Category>& categories,
                   const std::vector<GtBox>& gt, const std::vector<Detection>& reference,
                   const std::vector<Detection>& candidate, const BootstrapOptions& options) {
  const detail::ApByImage ref(image_ids, categories, gt, reference);
  const detail::ApByImage cand(image_ids, categories, gt, candidate);
  MapDelta m;
  m.images = ref.images();
  m.reference = ref.ap();
  m.candidate = cand.ap();
  if (m.reference < 0 || m.candidate < 0) return m;
  m.delta = m.candidate - m.reference;
  if (options.resamples == 0) return m;
  const auto values = replicate(bootstrap_resamples(m.images, options), [&](const std::vector<int>& r) {
    const double a = ref.ap(r), b = cand.ap(r);
    return a < 0 || b < 0 ? NAN : b - a;
  });
  m.resamples = static_cast<int>(values.size());
  if (!values.empty()) m.ci = percentile_interval(values, options.level);
  return m;
}

namespace {
std::vector<int64_t> image_ids(const Dataset& dataset) {
  std::vector<int64_t> ids;
  ids.reserve(dataset.images.size());
  for (const auto& im : dataset.images) ids.push_back(im.id);
  return ids;
}
}  // namespace

Agreement agreement(const Dataset& images, const std::vector<Detection>& reference,
                    const std::vector<Detection>& candidate, const BootstrapOptions& options) {
  return agreement(image_ids(images), images.categories, reference, candidate, options);
}

MapDelta map_delta(const Dataset& dataset, const std::vector<Detection>& reference,
                   const std::vector<Detection>& candidate, const BootstrapOptions& options) {
  return map_delta(image_ids(dataset), dataset.categories, dataset.gt, reference, candidate, options);
}

}  // namespace kestrel::eval
