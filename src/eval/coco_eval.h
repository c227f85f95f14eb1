#pragma once
// Internals of the COCO evaluator, exposed to the tests (which compare whole precision/recall arrays and
// the numpy-compatible helpers) but not part of the public API.
#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "kestrel/eval.h"

namespace kestrel::eval::detail {

// numpy.linspace(start, stop, num) bit for bit: i * ((stop - start) / (num - 1)) + start, last = stop.
// The IoU thresholds come out of it one ulp away from the decimal literals (0.55 is not 0.55), and a
// detection whose IoU is exactly at a threshold is matched or not depending on that ulp.
std::vector<double> numpy_linspace(double start, double stop, int num);

// numpy's float64 sum (pairwise summation with 8 accumulators, blocks of 128), divided by n: what
// np.mean(s[s > -1]) returns in summarize(). A plain loop differs in the last bits.
double numpy_mean(const std::vector<double>& values);

// maskApi.c bbIou for one pair of [x, y, w, h] boxes; crowd GT: intersection / detection area.
double bbox_iou(const double* dt, const double* gt, bool crowd);

struct CocoParams {
  std::vector<double> iou_thrs;                 // T = 10: linspace(.5, .95, 10)
  std::vector<double> rec_thrs;                 // R = 101: linspace(0, 1, 101)
  std::array<std::array<double, 2>, 4> area_rng;  // all, small, medium, large
  std::array<int, 3> max_dets{1, 10, 100};
};
const CocoParams& coco_params();

// COCOeval.eval after accumulate(): precision [T][R][K][A][M] and recall [T][K][A][M], row-major in
// that order (the order numpy flattens them in summarize, which matters for the pairwise mean), -1 where
// a (category, area) has no non-ignored GT.
struct CocoAccumulation {
  int T = 0, R = 0, K = 0, A = 0, M = 0;
  std::vector<int> cat_ids;  // sorted, unique
  std::vector<double> precision;
  std::vector<double> recall;
  double prec(int t, int r, int k, int a, int m) const {
    return precision[(((static_cast<size_t>(t) * R + r) * K + k) * A + a) * M + m];
  }
  double rec(int t, int k, int a, int m) const {
    return recall[((static_cast<size_t>(t) * K + k) * A + a) * M + m];
  }
};

CocoAccumulation accumulate_bbox(const std::vector<int64_t>& image_ids, const std::vector<Category>& categories,
                                 const std::vector<GtBox>& gt, const std::vector<Detection>& dets);

// summarize(): the 12 numbers from the accumulated arrays.
std::array<double, 12> summarize(const CocoAccumulation& acc);

// evaluateImg() output for one (category, area range, image) cell; defined in coco_eval.cpp.
struct ImageEval;

// stats[0] -- AP@[.50:.95], area all, 100 detections -- over any list of the images, without evaluating
// them again: pycocotools' evaluateImg depends on one image only, so every image is evaluated once and
// a list (a bootstrap resample) only re-runs accumulate and summarize. ap(list) equals evaluate_bbox's
// stats[0] on the data set that holds the listed images in that order as distinct images (a repeated
// image is a copy under a new, larger id); the tests check this.
class ApByImage {
 public:
  ApByImage(const std::vector<int64_t>& image_ids, const std::vector<Category>& categories,
            const std::vector<GtBox>& gt, const std::vector<Detection>& dets);
  int images() const { return images_; }  // sorted unique image ids; ap() takes indices into them
  double ap(const std::vector<int>& images) const;
  double ap() const;  // every image once: evaluate_bbox's stats[0]

 private:
  int images_ = 0, categories_ = 0;
  std::vector<std::shared_ptr<const ImageEval>> cells_;  // [K][I], area "all"
};

}  // namespace kestrel::eval::detail
