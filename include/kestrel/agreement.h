#pragma once
// Fidelity without labels: how closely a reduced-precision engine (FP16, INT8) reproduces the FP32
// engine's detections on the same images, and bootstrap intervals for it and for mAP differences.
//
// Agreement (the measure of ../shared/data/MANIFEST.md, agree-val): the FP32 engine's detections at
// conf >= 0.25 (validation NMS) are the ground truth -- one non-crowd box each, area w*h -- and the
// other engine's conf 0.001 detections are scored against them with the pycocotools-exact evaluator
// (mAP@[.50:.95]). An engine that reproduces FP32 scores 1.0; FP16 engines score about 0.998.
//
// Intervals: the percentile bootstrap over images (images drawn with replacement, every image's boxes
// and detections travel with it; mt19937_64 with a fixed seed, so the same inputs give the same
// interval on every machine). Each replicate is scored exactly as evaluate_bbox scores the resampled
// set, without evaluating the images again (see eval/coco_eval.h, ApByImage).
//
// The first part (kestrel_eval) works on detections; the second (kestrel_agreement) runs engines.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kestrel/eval.h"
#include "kestrel/inference.h"

namespace kestrel::eval {

// The confidences of the agreement measure: the reference's boxes, and what the compared engine reports.
inline constexpr double kAgreementReferenceConf = 0.25;
inline constexpr double kAgreementCandidateConf = 0.001;

struct Interval {
  double lo = NAN, hi = NAN;
  bool valid() const { return !std::isnan(lo) && !std::isnan(hi); }
};

struct BootstrapOptions {
  int resamples = 1000;          // replicates; 1000 puts the 2.5 % / 97.5 % percentiles within ~0.5 % of their limit
  uint64_t seed = 20260615;      // fixed: a report can be reproduced
  double level = 0.95;           // two-sided coverage of the interval
};

// `options.resamples` lists of `n` image indices drawn with replacement. The draw is defined (mt19937_64
// and a multiply-shift to [0, n)), not left to the standard library's distributions, so every platform
// draws the same lists.
std::vector<std::vector<int>> bootstrap_resamples(int n, const BootstrapOptions& options);

// The percentile interval of `values` at `level`: numpy.percentile (linear interpolation) at
// 100 (1 - level) / 2 and 100 (1 + level) / 2. Throws on an empty list.
Interval percentile_interval(std::vector<double> values, double level);

// The reference detections with score >= conf as ground truth (ids 1..N, iscrowd 0, area w*h).
std::vector<GtBox> agreement_ground_truth(const std::vector<Detection>& reference,
                                          double conf = kAgreementReferenceConf);

struct Agreement {
  double value = -1;  // -1 when the reference has no box on any image (nothing to agree with)
  Interval ci;        // bootstrap interval (invalid when resamples is 0 or value is -1)
  int images = 0;
  int reference_boxes = 0;
  int resamples = 0;  // replicates that had at least one reference box (the others have no value)
};

// Scores `candidate` (conf 0.001 detections) against `reference` (cut at kAgreementReferenceConf) on
// `image_ids`; options.resamples 0 skips the interval. Detections of images not listed are an error.
Agreement agreement(const std::vector<int64_t>& image_ids, const std::vector<Category>& categories,
                    const std::vector<Detection>& reference, const std::vector<Detection>& candidate,
                    const BootstrapOptions& options = {});
// The same on every image of `images` (a dataset's labels, if any, are not used).
Agreement agreement(const Dataset& images, const std::vector<Detection>& reference,
                    const std::vector<Detection>& candidate, const BootstrapOptions& options = {});

struct MapDelta {
  double reference = -1, candidate = -1;  // mAP@[.50:.95] of each (fractions)
  double delta = NAN;                     // candidate - reference (fractions, not points)
  Interval ci;                            // of delta, the two scored on the same resamples
  int images = 0, resamples = 0;
};

// The mAP difference of two engines' detections on one labelled dataset, with its paired bootstrap
// interval (both engines scored on the same resampled images).
MapDelta map_delta(const std::vector<int64_t>& image_ids, const std::vector<Category>& categories,
                   const std::vector<GtBox>& gt, const std::vector<Detection>& reference,
                   const std::vector<Detection>& candidate, const BootstrapOptions& options = {});
MapDelta map_delta(const Dataset& dataset, const std::vector<Detection>& reference,
                   const std::vector<Detection>& candidate, const BootstrapOptions& options = {});

// ---------------------------------------------------------------------------------------------------
// Running engines (library kestrel_agreement, on top of pipeline::validate)

// The images of a folder (.jpg, .jpeg, .png, sorted by name; ids 1..N in that order) as a dataset
// without labels, with `num_classes` categories (ids = class indices; COCO names for 80 classes).
// Throws a one-line kestrel::Error when the folder is missing, unreadable or holds no image.
Dataset unlabeled_images(const std::string& folder, int num_classes);

// The engine's detections on every image of `images` with validation post-processing (multi-label,
// class-offset NMS at the head's validation IoU, max 300) at confidence `conf`. Throws when an image
// cannot be read: agreement compares engines image for image, so none may be left out.
std::vector<Detection> engine_detections(InferenceEngine& engine, const Dataset& images, double conf,
                                         bool progress = true);

}  // namespace kestrel::eval
