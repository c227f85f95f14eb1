#pragma once
// The YOLO pipelines a user runs: validation on a labelled dataset (COCO mAP, exactly as pycocotools)
// and prediction on images (annotated pictures + JSON). Both work with any InferenceEngine.
#include <span>
#include <string>
#include <vector>

#include "kestrel/eval.h"
#include "kestrel/inference.h"
#include "kestrel/yolo.h"

namespace kestrel::pipeline {

// Class names from Ultralytics metadata ("{0: 'person', 1: 'bicycle', ...}"), else the COCO-80 list.
std::vector<std::string> class_names(const std::map<std::string, std::string>& metadata, int num_classes);

struct ValOptions {
  float conf = 0.001f;
  double iou = -1;  // < 0: 0.7, or 0.6 for YOLOv5-style heads (as each project's own validation)
  int max_det = 300;
  yolo::HeadKind head = yolo::HeadKind::Auto;
  bool progress = true;
  bool per_class = false;
};

struct SpeedPerImage {
  double preprocess_ms = 0, inference_ms = 0, postprocess_ms = 0;
};

struct ValResult {
  eval::CocoStats stats;
  std::vector<eval::Detection> detections;
  int images = 0;   // evaluated
  int skipped = 0;  // unreadable images, reported and left out
  double seconds = 0;
  SpeedPerImage speed;
  yolo::HeadKind head = yolo::HeadKind::Auto;
  double iou = 0;
};

// Decoded images (at most the engine's batch) -> boxes in each image's own pixels: the engine's
// ImageDetector when it has one (CUDA: letterbox and NMS on the GPU), else reference_detect.
std::vector<std::vector<yolo::Box>> detect_batch(InferenceEngine& engine, std::span<const image::Image* const> images,
                                                 yolo::HeadKind head, const yolo::NmsOptions& nms,
                                                 StageTimes* times = nullptr);
// The CPU reference: letterbox, infer(), decode + NMS, scale_boxes (what every other path must match).
std::vector<std::vector<yolo::Box>> reference_detect(InferenceEngine& engine, std::span<const image::Image* const> images,
                                                     yolo::HeadKind head, const yolo::NmsOptions& nms,
                                                     StageTimes* times = nullptr);

ValResult validate(InferenceEngine& engine, const eval::Dataset& dataset, const ValOptions& options = {});

struct PredictOptions {
  float conf = 0.25f;
  double iou = 0.7;
  int max_det = 300;
  yolo::HeadKind head = yolo::HeadKind::Auto;
  std::string out_dir;  // annotated images go here ("" = none)
  bool quiet = false;   // no per-image summary line
};

struct ImagePrediction {
  std::string source;
  int width = 0, height = 0;
  std::vector<yolo::Box> boxes;
  std::string saved_to;
  std::string error;  // non-empty when the image could not be read
  double ms = 0;
};

// SOURCES: files, folders (their images, sorted) and glob patterns.
std::vector<std::string> expand_sources(const std::vector<std::string>& sources);
std::vector<ImagePrediction> predict(InferenceEngine& engine, const std::vector<std::string>& images,
                                     const PredictOptions& options = {});
std::string predictions_json(const std::vector<ImagePrediction>& preds, const std::vector<std::string>& names);

}  // namespace kestrel::pipeline
