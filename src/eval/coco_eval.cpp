// COCO bbox evaluation, reproducing pycocotools' COCOeval (evaluate → accumulate → summarize).
//
// The structure follows pycocotools so that each rule can be checked against it, with one change that
// does not move any number: pycocotools evaluates every (category, area, image) cell first and
// accumulates afterwards; here each category is evaluated and accumulated before the next one, so the
// memory is that of one category and categories run in parallel (they share nothing).
#include "coco_eval.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

namespace kestrel::eval::detail {

std::vector<double> numpy_linspace(double start, double stop, int num) {
  if (num <= 0) return {};
  std::vector<double> y(num, start);
  if (num == 1) return y;
  // Same operations, in the same order, as numpy: step = delta / div; y = arange * step; y += start.
  const double step = (stop - start) / static_cast<double>(num - 1);
  for (int i = 0; i < num; ++i) y[i] = static_cast<double>(i) * step + start;
  y[num - 1] = stop;
  return y;
}

namespace {

// numpy's DOUBLE_pairwise_sum.
double pairwise_sum(const double* a, size_t n) {
  if (n < 8) {
    double res = 0.;
    for (size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    size_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

}  // namespace

double numpy_mean(const std::vector<double>& values) {
  // np.add.reduce hands the inner loop at most one buffer (8192 elements) at a time and adds the block
  // sums sequentially onto the identity 0; checked bit for bit against numpy 1.24.
  constexpr size_t kBuffer = 8192;
  double sum = 0.;
  for (size_t s = 0; s < values.size(); s += kBuffer)
    sum += pairwise_sum(values.data() + s, std::min(kBuffer, values.size() - s));
  return sum / static_cast<double>(values.size());
}

double bbox_iou(const double* d, const double* g, bool crowd) {
  // maskApi.c bbIou, operation for operation (x + w, fmin/fmax, w*h products) so that ties with the IoU
  // thresholds fall the same way.
  const double ga = g[2] * g[3];
  const double da = d[2] * d[3];
  const double w = std::fmin(d[2] + d[0], g[2] + g[0]) - std::fmax(d[0], g[0]);
  if (w <= 0) return 0;
  const double h = std::fmin(d[3] + d[1], g[3] + g[1]) - std::fmax(d[1], g[1]);
  if (h <= 0) return 0;
  const double i = w * h;
  const double u = crowd ? da : da + ga - i;
  return i / u;
}

const CocoParams& coco_params() {
  static const CocoParams p = [] {
    CocoParams q;
    // Params.setDetParams: linspace(.5, 0.95, round((0.95 - .5) / .05) + 1) and linspace(0, 1, 101).
    q.iou_thrs = numpy_linspace(.5, 0.95, static_cast<int>(std::round((0.95 - .5) / .05)) + 1);
    q.rec_thrs = numpy_linspace(.0, 1.00, static_cast<int>(std::round((1.00 - .0) / .01)) + 1);
    q.area_rng = {{{0., 1e5 * 1e5}, {0., 32. * 32.}, {32. * 32., 96. * 96.}, {96. * 96., 1e5 * 1e5}}};
    return q;
  }();
  return p;
}

namespace {

// Stable order of indices by descending score: np.argsort(-scores, kind='mergesort'). numpy sorts NaN
// last; -NaN is NaN, so NaN scores go last here too.
template <typename ScoreAt>
void sort_by_score_desc(std::vector<int>& idx, ScoreAt score_at) {
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) {
    const double sa = score_at(a), sb = score_at(b);
    if (std::isnan(sb)) return !std::isnan(sa);
    return sa > sb;
  });
}

}  // namespace

// evaluateImg() output for one (category, area range, image) cell.
struct ImageEval {
  bool present = false;  // pycocotools returns None (skipped by accumulate) when no GT and no detection
  int npig = 0;          // GTs not ignored
  std::vector<double> scores;     // detections, in ranked order (at most maxDets[-1])
  std::vector<uint8_t> matched;   // [T][D]: dtMatches != 0
  std::vector<uint8_t> ignored;   // [T][D]: dtIgnore
};

namespace {

struct Prepared {
  std::vector<int64_t> img_ids;  // sorted unique: p.imgIds after np.unique
  std::vector<int> cat_ids;      // sorted unique: p.catIds after np.unique
  // Per (category, image) cell: indices into gt / dets in input order (what COCO.getAnnIds yields).
  std::vector<std::vector<int>> gts, dts;  // [K * I]
  std::vector<double> det_area;            // loadRes: bbox w * h
};

Prepared prepare(const std::vector<int64_t>& image_ids, const std::vector<Category>& categories,
                 const std::vector<GtBox>& gt, const std::vector<Detection>& dets) {
  Prepared p;
  p.img_ids = image_ids;
  std::sort(p.img_ids.begin(), p.img_ids.end());
  p.img_ids.erase(std::unique(p.img_ids.begin(), p.img_ids.end()), p.img_ids.end());
  for (const auto& c : categories) p.cat_ids.push_back(c.id);
  std::sort(p.cat_ids.begin(), p.cat_ids.end());
  p.cat_ids.erase(std::unique(p.cat_ids.begin(), p.cat_ids.end()), p.cat_ids.end());

  std::unordered_map<int64_t, int> img_index;
  for (size_t i = 0; i < p.img_ids.size(); ++i) img_index.emplace(p.img_ids[i], static_cast<int>(i));
  std::unordered_map<int, int> cat_index;
  for (size_t k = 0; k < p.cat_ids.size(); ++k) cat_index.emplace(p.cat_ids[k], static_cast<int>(k));

  // loadRes asserts that every result belongs to an image of the GT set: a results file for another
  // split would otherwise score as all-misses without a word.
  size_t unknown = 0;
  int64_t example = 0;
  for (const auto& d : dets)
    if (!img_index.count(d.image_id)) {
      if (!unknown) example = d.image_id;
      ++unknown;
    }
  if (unknown)
    fail("detections do not correspond to the dataset: ", unknown, " of ", dets.size(),
         " refer to image ids that are not in it (e.g. ", example, ")");

  const size_t I = p.img_ids.size(), K = p.cat_ids.size();
  p.gts.assign(K * I, {});
  p.dts.assign(K * I, {});
  for (size_t j = 0; j < gt.size(); ++j) {
    auto ii = img_index.find(gt[j].image_id);
    auto kk = cat_index.find(gt[j].category_id);
    if (ii == img_index.end() || kk == cat_index.end()) continue;
    p.gts[kk->second * I + ii->second].push_back(static_cast<int>(j));
  }
  p.det_area.resize(dets.size());
  for (size_t j = 0; j < dets.size(); ++j) {
    p.det_area[j] = dets[j].w * dets[j].h;
    auto kk = cat_index.find(dets[j].category_id);
    if (kk == cat_index.end()) continue;
    p.dts[kk->second * I + img_index.at(dets[j].image_id)].push_back(static_cast<int>(j));
  }
  return p;
}

// computeIoU + evaluateImg for one (category, image) cell, all area ranges at once (the IoUs and the
// detection order do not depend on the area range). out[a] receives the cell for area range a.
void evaluate_cell(const std::vector<int>& gidx, const std::vector<int>& didx, const std::vector<GtBox>& gt,
                   const std::vector<Detection>& dets, const std::vector<double>& det_area, const CocoParams& P,
                   ImageEval* out) {
  const int A = static_cast<int>(P.area_rng.size());
  if (gidx.empty() && didx.empty()) {
    for (int a = 0; a < A; ++a) out[a] = ImageEval{};
    return;
  }
  const int T = static_cast<int>(P.iou_thrs.size());
  const size_t max_det = static_cast<size_t>(P.max_dets.back());

  // Detections ranked by score (stable), cut to maxDets[-1].
  std::vector<int> dt(didx);
  sort_by_score_desc(dt, [&](int j) { return dets[j].score; });
  if (dt.size() > max_det) dt.resize(max_det);
  const int D = static_cast<int>(dt.size());
  const int G = static_cast<int>(gidx.size());

  // ious[d][g] against the GTs in input order (columns are permuted per area range below).
  std::vector<double> ious(static_cast<size_t>(D) * G);
  for (int d = 0; d < D; ++d) {
    const Detection& det = dets[dt[d]];
    const double db[4] = {det.x, det.y, det.w, det.h};
    for (int g = 0; g < G; ++g) {
      const GtBox& b = gt[gidx[g]];
      const double gb[4] = {b.x, b.y, b.w, b.h};
      ious[static_cast<size_t>(d) * G + g] = bbox_iou(db, gb, b.iscrowd);
    }
  }
  const bool have_ious = D > 0 && G > 0;  // mask.iou returns [] when either side is empty

  std::vector<int> gorder(G);
  std::vector<uint8_t> g_ignore(G), g_sorted_ignore(G), g_crowd(G), g_used(static_cast<size_t>(T) * G);
  for (int a = 0; a < A; ++a) {
    const double lo = P.area_rng[a][0], hi = P.area_rng[a][1];
    ImageEval& e = out[a];
    e.present = true;
    for (int g = 0; g < G; ++g) {
      const GtBox& b = gt[gidx[g]];
      g_ignore[g] = b.iscrowd || b.area < lo || b.area > hi;
    }
    // GTs: ignored ones last, otherwise input order (stable argsort of the 0/1 flags).
    std::iota(gorder.begin(), gorder.end(), 0);
    std::stable_sort(gorder.begin(), gorder.end(), [&](int x, int y) { return g_ignore[x] < g_ignore[y]; });
    e.npig = 0;
    for (int g = 0; g < G; ++g) {
      g_sorted_ignore[g] = g_ignore[gorder[g]];
      g_crowd[g] = gt[gidx[gorder[g]]].iscrowd;
      e.npig += !g_sorted_ignore[g];
    }
    e.scores.resize(D);
    for (int d = 0; d < D; ++d) e.scores[d] = dets[dt[d]].score;
    e.matched.assign(static_cast<size_t>(T) * D, 0);
    e.ignored.assign(static_cast<size_t>(T) * D, 0);
    std::fill(g_used.begin(), g_used.end(), 0);

    if (have_ious) {
      for (int t = 0; t < T; ++t) {
        for (int d = 0; d < D; ++d) {
          // Greedy matching in score order: the best-IoU GT still free (crowds are never used up); once
          // matched to a regular GT, ignored GTs (sorted last) are not considered.
          double best = std::min(P.iou_thrs[t], 1 - 1e-10);
          int m = -1;
          for (int g = 0; g < G; ++g) {
            if (g_used[static_cast<size_t>(t) * G + g] && !g_crowd[g]) continue;
            if (m > -1 && !g_sorted_ignore[m] && g_sorted_ignore[g]) break;
            const double iou = ious[static_cast<size_t>(d) * G + gorder[g]];
            if (iou < best) continue;
            best = iou;
            m = g;
          }
          if (m == -1) continue;
          const size_t td = static_cast<size_t>(t) * D + d;
          e.ignored[td] = g_sorted_ignore[m];
          // dtMatches holds the GT's annotation id and is later tested for != 0 (see GtBox::id).
          e.matched[td] = gt[gidx[gorder[m]]].id != 0;
          g_used[static_cast<size_t>(t) * G + m] = 1;
        }
      }
    }
    // Unmatched detections outside the area range are ignored (not false positives).
    for (int d = 0; d < D; ++d) {
      const double ar = det_area[dt[d]];
      if (!(ar < lo || ar > hi)) continue;
      for (int t = 0; t < T; ++t) {
        const size_t td = static_cast<size_t>(t) * D + d;
        if (!e.matched[td]) e.ignored[td] = 1;
      }
    }
  }
}

// accumulate() for one (category, area range, maxDets) slice, given each image's cell in image order
// (an image may appear more than once: a bootstrap resample). False when nothing is to be recalled
// (no cell present, or no non-ignored GT): pycocotools then leaves -1.
struct SliceResult {
  std::vector<double> precision;  // [T][R]
  std::vector<double> recall;     // [T]
};

bool accumulate_slice(const std::vector<const ImageEval*>& cells, size_t max_det, const CocoParams& P,
                      SliceResult& out) {
  const int T = static_cast<int>(P.iou_thrs.size()), R = static_cast<int>(P.rec_thrs.size());
  const double eps = std::numeric_limits<double>::epsilon();  // np.spacing(1)
  // Concatenate each image's first maxDet detections (image order), then rank them all by score with
  // the same stable sort: ties keep image order.
  std::vector<double> scores;
  std::vector<std::pair<const ImageEval*, int>> src;  // (image cell, detection) of each entry
  int npig = 0;
  bool any = false;
  for (const ImageEval* e : cells) {
    if (!e->present) continue;
    any = true;
    npig += e->npig;
    const size_t n = std::min(max_det, e->scores.size());
    for (size_t d = 0; d < n; ++d) {
      scores.push_back(e->scores[d]);
      src.emplace_back(e, static_cast<int>(d));
    }
  }
  if (!any || npig == 0) return false;
  const int nd = static_cast<int>(scores.size());
  std::vector<int> inds(nd);
  std::iota(inds.begin(), inds.end(), 0);
  sort_by_score_desc(inds, [&](int j) { return scores[j]; });

  std::vector<double> rc(nd), pr(nd);
  out.precision.assign(static_cast<size_t>(T) * R, 0.0);
  out.recall.assign(T, 0.0);
  for (int t = 0; t < T; ++t) {
    // Cumulative TP/FP over the ranked list; ignored detections advance neither count but still
    // occupy a position (they repeat the previous recall/precision), as in pycocotools.
    double tp = 0, fp = 0;
    for (int j = 0; j < nd; ++j) {
      const auto [e, d] = src[inds[j]];
      const size_t td = static_cast<size_t>(t) * e->scores.size() + d;
      const bool matched = e->matched[td], ign = e->ignored[td];
      if (!ign) (matched ? tp : fp) += 1;
      rc[j] = tp / npig;
      pr[j] = tp / (fp + tp + eps);
    }
    out.recall[t] = nd ? rc[nd - 1] : 0;
    // Monotone envelope: precision at a rank is the best precision at any later rank.
    for (int j = nd - 1; j > 0; --j)
      if (pr[j] > pr[j - 1]) pr[j - 1] = pr[j];
    // Precision at each recall threshold: first rank with rc >= threshold (searchsorted 'left');
    // thresholds beyond the reached recall get 0.
    for (int r = 0; r < R; ++r) {
      const int j = static_cast<int>(std::lower_bound(rc.begin(), rc.end(), P.rec_thrs[r]) - rc.begin());
      out.precision[static_cast<size_t>(t) * R + r] = j < nd ? pr[j] : 0.0;
    }
  }
  return true;
}

}  // namespace

CocoAccumulation accumulate_bbox(const std::vector<int64_t>& image_ids, const std::vector<Category>& categories,
                                 const std::vector<GtBox>& gt, const std::vector<Detection>& dets) {
  const CocoParams& P = coco_params();
  const Prepared prep = prepare(image_ids, categories, gt, dets);

  CocoAccumulation acc;
  acc.T = static_cast<int>(P.iou_thrs.size());
  acc.R = static_cast<int>(P.rec_thrs.size());
  acc.K = static_cast<int>(prep.cat_ids.size());
  acc.A = static_cast<int>(P.area_rng.size());
  acc.M = static_cast<int>(P.max_dets.size());
  acc.cat_ids = prep.cat_ids;
  const int T = acc.T, R = acc.R, K = acc.K, A = acc.A, M = acc.M;
  const int I = static_cast<int>(prep.img_ids.size());
  acc.precision.assign(static_cast<size_t>(T) * R * K * A * M, -1.0);
  acc.recall.assign(static_cast<size_t>(T) * K * A * M, -1.0);
  auto prec_at = [&](int t, int r, int k, int a, int m) -> double& {
    return acc.precision[(((static_cast<size_t>(t) * R + r) * K + k) * A + a) * M + m];
  };
  auto rec_at = [&](int t, int k, int a, int m) -> double& {
    return acc.recall[((static_cast<size_t>(t) * K + k) * A + a) * M + m];
  };
#pragma omp parallel for schedule(dynamic, 1)
  for (int k = 0; k < K; ++k) {
    std::vector<ImageEval> cells(static_cast<size_t>(A) * I);  // [A][I]
    std::vector<ImageEval> tmp(A);
    for (int i = 0; i < I; ++i) {
      const size_t cell = static_cast<size_t>(k) * I + i;
      evaluate_cell(prep.gts[cell], prep.dts[cell], gt, dets, prep.det_area, P, tmp.data());
      for (int a = 0; a < A; ++a) cells[static_cast<size_t>(a) * I + i] = std::move(tmp[a]);
    }

    std::vector<const ImageEval*> slice(static_cast<size_t>(I));
    SliceResult res;
    for (int a = 0; a < A; ++a) {
      for (int i = 0; i < I; ++i) slice[i] = &cells[static_cast<size_t>(a) * I + i];
      for (int m = 0; m < M; ++m) {
        if (!accumulate_slice(slice, static_cast<size_t>(P.max_dets[m]), P, res)) continue;
        for (int t = 0; t < T; ++t) {
          rec_at(t, k, a, m) = res.recall[t];
          for (int r = 0; r < R; ++r) prec_at(t, r, k, a, m) = res.precision[static_cast<size_t>(t) * R + r];
        }
      }
    }
  }
  return acc;
}

ApByImage::ApByImage(const std::vector<int64_t>& image_ids, const std::vector<Category>& categories,
                     const std::vector<GtBox>& gt, const std::vector<Detection>& dets) {
  const CocoParams& P = coco_params();
  const Prepared prep = prepare(image_ids, categories, gt, dets);
  images_ = static_cast<int>(prep.img_ids.size());
  categories_ = static_cast<int>(prep.cat_ids.size());
  cells_.resize(static_cast<size_t>(categories_) * images_);
  const int A = static_cast<int>(P.area_rng.size());
#pragma omp parallel for schedule(dynamic, 1)
  for (int k = 0; k < categories_; ++k) {
    std::vector<ImageEval> tmp(A);
    for (int i = 0; i < images_; ++i) {
      const size_t cell = static_cast<size_t>(k) * images_ + i;
      evaluate_cell(prep.gts[cell], prep.dts[cell], gt, dets, prep.det_area, P, tmp.data());
      cells_[cell] = std::make_shared<const ImageEval>(std::move(tmp[0]));  // area "all" only
    }
  }
}

double ApByImage::ap() const {
  std::vector<int> all(static_cast<size_t>(images_));
  std::iota(all.begin(), all.end(), 0);
  return ap(all);
}

double ApByImage::ap(const std::vector<int>& images) const {
  const CocoParams& P = coco_params();
  const int T = static_cast<int>(P.iou_thrs.size()), R = static_cast<int>(P.rec_thrs.size()), K = categories_;
  for (int i : images) KESTREL_CHECK(i >= 0 && i < images_, "ApByImage: image index ", i, " out of range");
  // precision[t][r][k] as accumulate() lays it out for (area all, maxDets 100), -1 where undefined.
  std::vector<double> prec(static_cast<size_t>(T) * R * K, -1.0);
  std::vector<const ImageEval*> slice(images.size());
  SliceResult res;
  for (int k = 0; k < K; ++k) {
    for (size_t j = 0; j < images.size(); ++j) slice[j] = cells_[static_cast<size_t>(k) * images_ + images[j]].get();
    if (!accumulate_slice(slice, static_cast<size_t>(P.max_dets.back()), P, res)) continue;
    for (int t = 0; t < T; ++t)
      for (int r = 0; r < R; ++r)
        prec[(static_cast<size_t>(t) * R + r) * K + k] = res.precision[static_cast<size_t>(t) * R + r];
  }
  // summarize(): the mean of the defined entries in numpy's flattening order.
  std::vector<double> s;
  for (double v : prec)
    if (v > -1) s.push_back(v);
  return s.empty() ? -1.0 : numpy_mean(s);
}

std::array<double, 12> summarize(const CocoAccumulation& acc) {
  const CocoParams& P = coco_params();
  // _summarize(ap, iouThr, areaRng, maxDets): mean over the selected slice of the entries > -1, in the
  // order numpy flattens the slice (t, r, k for precision; t, k for recall).
  auto pick = [&](bool ap, double iou_thr, int a, int max_dets) {
    int m = -1;
    for (int j = 0; j < acc.M; ++j)
      if (P.max_dets[j] == max_dets) m = j;
    std::vector<double> s;
    for (int t = 0; t < acc.T; ++t) {
      if (!std::isnan(iou_thr) && P.iou_thrs[t] != iou_thr) continue;  // np.where(iouThr == p.iouThrs)
      if (ap) {
        for (int r = 0; r < acc.R; ++r)
          for (int k = 0; k < acc.K; ++k)
            if (double v = acc.prec(t, r, k, a, m); v > -1) s.push_back(v);
      } else {
        for (int k = 0; k < acc.K; ++k)
          if (double v = acc.rec(t, k, a, m); v > -1) s.push_back(v);
      }
    }
    return s.empty() ? -1.0 : numpy_mean(s);
  };
  const double all = std::numeric_limits<double>::quiet_NaN();
  const int md = P.max_dets[2];
  return {pick(true, all, 0, md),  pick(true, .5, 0, md),  pick(true, .75, 0, md),
          pick(true, all, 1, md),  pick(true, all, 2, md), pick(true, all, 3, md),
          pick(false, all, 0, P.max_dets[0]), pick(false, all, 0, P.max_dets[1]),
          pick(false, all, 0, md), pick(false, all, 1, md), pick(false, all, 2, md),
          pick(false, all, 3, md)};
}

}  // namespace kestrel::eval::detail

namespace kestrel::eval {

const std::array<const char*, 12>& CocoStats::names() {
  static const std::array<const char*, 12> n = {"AP",   "AP50", "AP75", "APs",   "APm", "APl",
                                                "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"};
  return n;
}

CocoStats evaluate_bbox(const std::vector<int64_t>& image_ids, const std::vector<Category>& categories,
                        const std::vector<GtBox>& gt, const std::vector<Detection>& dets) {
  const detail::CocoAccumulation acc = detail::accumulate_bbox(image_ids, categories, gt, dets);
  CocoStats out;
  out.stats = detail::summarize(acc);

  // Per class: the summarize() rule applied to one category's slice (area all, 100 detections).
  const auto& P = detail::coco_params();
  std::unordered_map<int, std::string> names;
  for (const auto& c : categories) names.emplace(c.id, c.name);
  std::unordered_set<int64_t> evaluated(image_ids.begin(), image_ids.end());
  std::unordered_map<int, int> instances;
  std::unordered_map<int, std::unordered_set<int64_t>> images;
  for (const auto& g : gt)
    if (!g.iscrowd && evaluated.count(g.image_id)) {
      ++instances[g.category_id];
      images[g.category_id].insert(g.image_id);
    }
  const int m100 = acc.M - 1;
  for (int k = 0; k < acc.K; ++k) {
    ClassAp c;
    c.category_id = acc.cat_ids[k];
    c.name = names[c.category_id];
    c.instances = instances.count(c.category_id) ? instances[c.category_id] : 0;
    c.images = images.count(c.category_id) ? static_cast<int>(images[c.category_id].size()) : 0;
    std::vector<double> s, s50;
    for (int t = 0; t < acc.T; ++t)
      for (int r = 0; r < acc.R; ++r)
        if (double v = acc.prec(t, r, k, 0, m100); v > -1) {
          s.push_back(v);
          if (P.iou_thrs[t] == .5) s50.push_back(v);
        }
    c.ap = s.empty() ? -1.0 : detail::numpy_mean(s);
    c.ap50 = s50.empty() ? -1.0 : detail::numpy_mean(s50);
    out.per_class.push_back(std::move(c));
  }
  return out;
}

CocoStats evaluate_bbox(const Dataset& dataset, const std::vector<Detection>& dets) {
  std::vector<int64_t> ids;
  ids.reserve(dataset.images.size());
  for (const auto& im : dataset.images) ids.push_back(im.id);
  return evaluate_bbox(ids, dataset.categories, dataset.gt, dets);
}

std::string format_stats(const CocoStats& s) {
  // Same layout as pycocotools' iStr: ' {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}'.
  struct Row { bool ap; const char* iou; const char* area; int max_dets; };
  static const Row rows[12] = {
      {true, "0.50:0.95", "all", 100},   {true, "0.50", "all", 100},      {true, "0.75", "all", 100},
      {true, "0.50:0.95", "small", 100}, {true, "0.50:0.95", "medium", 100}, {true, "0.50:0.95", "large", 100},
      {false, "0.50:0.95", "all", 1},    {false, "0.50:0.95", "all", 10},  {false, "0.50:0.95", "all", 100},
      {false, "0.50:0.95", "small", 100}, {false, "0.50:0.95", "medium", 100}, {false, "0.50:0.95", "large", 100}};
  std::string out;
  char line[160];
  for (int i = 0; i < 12; ++i) {
    const Row& r = rows[i];
    std::snprintf(line, sizeof line, " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %0.3f\n",
                  r.ap ? "Average Precision" : "Average Recall", r.ap ? "(AP)" : "(AR)", r.iou, r.area,
                  r.max_dets, s.stats[i]);
    out += line;
  }
  return out;
}

}  // namespace kestrel::eval
