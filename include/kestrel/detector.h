#pragma once
// kestrel::Detector: a YOLO detector for programs. Open an ONNX model, a built-in name or an engine
// file (backend auto: CUDA when a GPU is present), then detect() on image files, encoded JPEG/PNG
// bytes or decoded 8-bit images; each image gets its boxes in its own pixels, with scores, classes and
// per-stage times. The pipeline is pipeline::detect_batch's: the engine's own GPU pre/post-processing
// when it has one, else the CPU reference path, so results equal `kestrel predict`'s.
//
//   kestrel::Detector det("yolov8n.onnx");
//   for (const kestrel::Detections& d : det.detect({"bus.jpg"}))
//     for (const kestrel::yolo::Box& b : d.boxes) std::printf("%s %.2f\n", det.names()[b.cls].c_str(), b.score);
//
// Thread-safe: any number of threads may call detect() on one Detector. Decoding runs in the calling
// thread; the engine runs one batch at a time (one execution context). Inputs larger than the engine's
// batch are split into batches.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kestrel/inference.h"
#include "kestrel/model.h"
#include "kestrel/yolo.h"

namespace kestrel {

struct DetectorOptions : ModelOptions {
  yolo::HeadKind head = yolo::HeadKind::Auto;  // detection head layout (Auto: from the output shape)
};

struct DetectOptions {
  float conf = 0.25f;    // keep scores above this
  double iou = 0.7;      // NMS IoU threshold
  int max_det = 300;     // detections kept per image
  bool agnostic = false; // class-agnostic NMS
};

enum class PixelOrder { BGR, RGB };

// A decoded 8-bit, 3-channel, interleaved image owned by the caller (only read during detect()).
struct ImageView {
  const uint8_t* data = nullptr;
  int width = 0, height = 0;
  size_t row_stride = 0;  // bytes from one row to the next; 0: width * 3 (no padding)
  PixelOrder order = PixelOrder::BGR;
};

struct Detections {
  std::vector<yolo::Box> boxes;  // x1, y1, x2, y2 in the image's pixels, score, class; best first
  int width = 0, height = 0;     // the image's size (after EXIF orientation for files)
  StageTimes speed;              // this image's share of its batch's stages, ms
};

class Detector {
 public:
  explicit Detector(const std::string& model, const DetectorOptions& options = {});
  // Wraps an engine the caller opened (e.g. with make_cpu_engine on a graph it built).
  explicit Detector(std::unique_ptr<InferenceEngine> engine, yolo::HeadKind head = yolo::HeadKind::Auto);
  ~Detector();
  Detector(const Detector&) = delete;
  Detector& operator=(const Detector&) = delete;

  // Image files (JPEG or PNG; EXIF orientation applied). An unreadable file is a kestrel::Error naming it.
  std::vector<Detections> detect(const std::vector<std::string>& paths, const DetectOptions& options = {});
  // Encoded JPEG or PNG bytes, one buffer per image.
  std::vector<Detections> detect_encoded(std::span<const std::span<const uint8_t>> images,
                                         const DetectOptions& options = {});
  // Decoded 8-bit images.
  std::vector<Detections> detect(std::span<const ImageView> images, const DetectOptions& options = {});
  // Decoded BGR images (kestrel::image::read_image's).
  std::vector<Detections> detect(std::span<const image::Image> images, const DetectOptions& options = {});

  const std::vector<std::string>& names() const;  // class names (model metadata, else COCO-80)
  int num_classes() const;
  int64_t batch() const;      // images per engine run
  int64_t imgsz() const;      // the square input size
  std::string description() const;  // "cpu fp32", "cuda fp16 (NVIDIA H100 ...)"

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kestrel
