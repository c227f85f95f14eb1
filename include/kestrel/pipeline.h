#pragma once
// The YOLO pipelines a user runs: validation on a labelled dataset (COCO mAP, exactly as pycocotools)
// and prediction on images (annotated pictures + JSON). Both work with any InferenceEngine.
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "kestrel/eval.h"
#include "kestrel/image_loader.h"
#include "kestrel/inference.h"
#include "kestrel/yolo.h"

namespace kestrel::pipeline {

// Class names from Ultralytics metadata ("{0: 'person', 1: 'bicycle', ...}"), else the COCO-80 list.
std::vector<std::string> class_names(const std::map<std::string, std::string>& metadata, int num_classes);

struct ValOptions {
  float conf = yolo::NmsOptions::validation(yolo::HeadKind::V8).conf;
  double iou = -1;  // < 0: NmsOptions::validation(head).iou (0.7, or 0.6 for YOLOv5-style heads)
  int max_det = yolo::NmsOptions::validation(yolo::HeadKind::V8).max_det;
  yolo::HeadKind head = yolo::HeadKind::Auto;
  bool progress = true;
  bool per_class = false;
  int decode_threads = 0;  // image decoding threads (0: one per hardware thread but one)
  // Letterbox, decode and NMS on the CPU even when the engine could run them (the reference path, to
  // check the engine's own against it).
  bool reference_path = false;
};

// Mean time per image of each stage. Decoding runs on a thread pool, overlapped with the rest: the
// whole run's images/s is ValResult::images / seconds, not the sum of the stages.
struct SpeedPerImage {
  double decode_ms = 0, preprocess_ms = 0, inference_ms = 0, postprocess_ms = 0;
};

// Where the thread that runs the batch loop spends its time, in ms: waiting for decoded images,
// staging images and submitting batches, waiting for (and finishing) results, handing them on.
// Mostly waiting for images means the run is decode-bound; mostly waiting for results, device-bound.
struct HostTimes {
  double wait_images_ms = 0, staging_ms = 0, results_ms = 0, sink_ms = 0;
  double first_batch_ms = 0;  // from the start until the first batch was submitted
};
struct ValResult {
  eval::CocoStats stats;
  std::vector<eval::Detection> detections;
  int images = 0;   // evaluated
  int skipped = 0;  // unreadable images, reported and left out
  double seconds = 0;
  SpeedPerImage speed;
  StageTimes stages;  // summed over the run (GPU kernels alone in device_*)
  HostTimes host;
  yolo::HeadKind head = yolo::HeadKind::Auto;
  double iou = 0;
};

// One batch of a run over image files, in file order: entries that failed to decode carry their error
// (LoadedImage::error) and no boxes.
struct DetectedBatch {
  std::vector<image::LoadedImage> items;
  std::vector<std::vector<yolo::Box>> boxes;  // one per item, in its image's pixels
  StageTimes stages;                          // this batch's
};
struct RunTotals {
  double decode_ms = 0;  // summed over images (on the decode threads)
  StageTimes stages;     // summed over batches
  HostTimes host;
  int64_t images = 0, failed = 0;
};
// Every file of `loader` through the engine in batches of its size: with an ImageDetector two batches
// are in flight (the next one is decoded and uploaded while the device runs the one before); else, or
// with `reference_path`, the CPU reference one batch at a time. `sink` sees each batch in file order.
RunTotals run_detection(InferenceEngine& engine, image::ImageLoader& loader, yolo::HeadKind head,
                        const yolo::NmsOptions& nms, bool reference_path,
                        const std::function<void(DetectedBatch&)>& sink);

// Decoded images (at most the engine's batch) -> boxes in each image's own pixels: the engine's
// ImageDetector when it has one (CUDA: letterbox and NMS on the GPU), else reference_detect.
std::vector<std::vector<yolo::Box>> detect_batch(InferenceEngine& engine, std::span<const image::Image* const> images,
                                                 yolo::HeadKind head, const yolo::NmsOptions& nms,
                                                 StageTimes* times = nullptr);
// Before a timed run: `images` (at most the engine's batch) through every batch the engine's image
// detector keeps in flight, so that each has its staging and the engine its CUDA graphs; without a
// detector, once through detect_batch.
void warm_up(InferenceEngine& engine, std::span<const image::Image* const> images, yolo::HeadKind head,
             const yolo::NmsOptions& nms);
// The CPU reference: letterbox, infer(), decode + NMS, scale_boxes (what every other path must match).
std::vector<std::vector<yolo::Box>> reference_detect(InferenceEngine& engine, std::span<const image::Image* const> images,
                                                     yolo::HeadKind head, const yolo::NmsOptions& nms,
                                                     StageTimes* times = nullptr);

ValResult validate(InferenceEngine& engine, const eval::Dataset& dataset, const ValOptions& options = {});

struct PredictOptions {
  float conf = yolo::NmsOptions::prediction().conf;
  double iou = yolo::NmsOptions::prediction().iou;
  int max_det = yolo::NmsOptions::prediction().max_det;
  yolo::HeadKind head = yolo::HeadKind::Auto;
  std::string out_dir;  // annotated images go here ("" = none)
  bool quiet = false;   // no per-image summary line
  int decode_threads = 0;  // image decoding threads (0: one per hardware thread but one)
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
// The whole path from image files to boxes (decode on a thread pool, letterbox, network, decode + NMS),
// timed over `passes` passes of the list after one warm-up batch: what `kestrel bench --images` reports.
struct EndToEndOptions {
  int passes = 3;
  yolo::NmsOptions nms = yolo::NmsOptions::prediction();
  int decode_threads = 0;
};
struct EndToEndResult {
  int64_t images = 0;     // images through the engine (unreadable files are counted in `skipped`)
  int64_t skipped = 0;
  double seconds = 0, images_per_s = 0;
  SpeedPerImage speed;    // mean per image
  // The GPU kernels alone (letterbox; decode + NMS), mean per image; 0 on the CPU path.
  double device_preprocess_ms = 0, device_postprocess_ms = 0;
  int64_t detections = 0;
  HostTimes host;  // the timed passes'
  // One decoded image in host memory -> its boxes in host memory, wall clock, median of 200 (batch 1
  // engines; 0 otherwise).
  double latency_ms = 0;
};
EndToEndResult measure_end_to_end(InferenceEngine& engine, const std::vector<std::string>& images,
                                  const EndToEndOptions& options = {});

std::string predictions_json(const std::vector<ImagePrediction>& preds, const std::vector<std::string>& names);

}  // namespace kestrel::pipeline
