#pragma once
// One interface for "run this detector on a batch", implemented by the CPU reference backend and by
// CUDA engines, so validation, prediction, compare and bench share one pipeline whatever the backend.
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kestrel/graph.h"
#include "kestrel/image.h"
#include "kestrel/yolo.h"

namespace kestrel {

// Time of one batch's stages, in milliseconds. GPU stages are measured with CUDA events.
// The GPU path also reports its kernels alone (device_*: the letterbox kernel, the detection kernels),
// without the copies to and from the host.
struct StageTimes {
  double preprocess_ms = 0;   // letterbox, with its upload
  double inference_ms = 0;    // the network
  double postprocess_ms = 0;  // decode, confidence filter, NMS, boxes back to image pixels, with the copy back
  double device_preprocess_ms = 0, device_postprocess_ms = 0;
  StageTimes& operator+=(const StageTimes& o) {
    preprocess_ms += o.preprocess_ms, inference_ms += o.inference_ms, postprocess_ms += o.postprocess_ms;
    device_preprocess_ms += o.device_preprocess_ms, device_postprocess_ms += o.device_postprocess_ms;
    return *this;
  }
};

// Decoded images in, boxes (in each image's own pixels) out, for engines that run pre- and
// post-processing next to the network (the CUDA engine: letterbox and NMS on the GPU). They return
// exactly what the CPU reference path returns (pipeline::reference_detect).
// Asynchronous: submit() stages a batch (the images may be freed when it returns) and queues its work;
// collect() returns the oldest submitted batch's boxes. Up to depth() batches may be in flight, so the
// caller decodes and stages batch k+1 while the device runs batch k.
class ImageDetector {
 public:
  virtual ~ImageDetector() = default;
  // A batch built image by image: add() stages one image at once (the image may be freed when it
  // returns), so its copy overlaps the wait for the next; submit_added() queues the images added since
  // the last submit (at most the engine's batch; `head` is V8 or V5). add() needs in_flight() < depth().
  virtual void add(const image::Image& image) = 0;
  virtual void submit_added(yolo::HeadKind head, const yolo::NmsOptions& nms) = 0;
  // Drops the images added and not submitted (after an error while building a batch).
  virtual void discard_added() = 0;
  virtual std::vector<std::vector<yolo::Box>> collect(StageTimes* times = nullptr) = 0;
  virtual int depth() const = 0;
  virtual int in_flight() const = 0;
  // A whole batch at once: add() each image, then submit_added().
  void submit(std::span<const image::Image* const> images, yolo::HeadKind head, const yolo::NmsOptions& nms) {
    try {
      for (const image::Image* im : images) add(*im);
      submit_added(head, nms);
    } catch (...) {
      discard_added();
      throw;
    }
  }
  // After an error: drops what was added and collects (discarding) every batch in flight, so that
  // the detector is empty for the next run.
  void abandon() noexcept {
    discard_added();
    while (in_flight() > 0) {
      try {
        collect(nullptr);
      } catch (...) {
      }
    }
  }
  // submit + collect.
  std::vector<std::vector<yolo::Box>> detect(std::span<const image::Image* const> images, yolo::HeadKind head,
                                             const yolo::NmsOptions& nms, StageTimes* times = nullptr) {
    submit(images, head, nms);
    return collect(times);
  }
};

class InferenceEngine {
 public:
  virtual ~InferenceEngine() = default;
  // [B, 3, S, S] float32: the batch every infer() call must fill.
  virtual Shape input_shape() const = 0;
  virtual Shape output_shape() const = 0;
  // Runs one batch; the returned tensor is float32 with output_shape().
  virtual HostTensor infer(const HostTensor& input) = 0;
  // "cpu fp32", "cuda fp16 (NVIDIA H200)", ...
  virtual std::string description() const = 0;
  // Model metadata (Ultralytics names/stride/imgsz) when known.
  virtual const std::map<std::string, std::string>& metadata() const = 0;
  // Images-to-boxes on the engine's own device, or nullptr: the pipeline then letterboxes, decodes and
  // runs NMS on the CPU (the reference path).
  virtual ImageDetector* image_detector() { return nullptr; }
};

std::unique_ptr<InferenceEngine> make_cpu_engine(Graph graph);

}  // namespace kestrel
