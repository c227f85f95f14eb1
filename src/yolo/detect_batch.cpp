// Images to boxes on any engine: the engine's own image detector (GPU pre/post-processing) when it has
// one, else the CPU reference path that every other path is checked against.
#include <algorithm>

#include "kestrel/pipeline.h"
#include "util/stopwatch.h"

namespace kestrel::pipeline {

namespace {
using util::Clock;
using util::ms_since;
}  // namespace

std::vector<std::vector<yolo::Box>> reference_detect(InferenceEngine& engine, std::span<const image::Image* const> images,
                                                     yolo::HeadKind head, const yolo::NmsOptions& nms, StageTimes* times) {
  const Shape in_shape = engine.input_shape();
  KESTREL_CHECK(in_shape.size() == 4 && in_shape[1] == 3 && in_shape[2] == in_shape[3],
                "the model input ", shape_str(in_shape), " is not a square [B,3,S,S] image batch");
  const int64_t B = in_shape[0], S = in_shape[2];
  const int64_t n = static_cast<int64_t>(images.size());
  KESTREL_CHECK(n >= 1 && n <= B, "detect: ", n, " images for an engine of batch ", B);
  auto t0 = Clock::now();
  const size_t per_image = static_cast<size_t>(3 * S * S);
  HostTensor batch(DType::F32, in_shape);
  std::vector<yolo::LetterboxInfo> infos(static_cast<size_t>(n));
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < B; ++i) {
    float* slot = batch.data<float>() + static_cast<size_t>(i) * per_image;
    if (i < n)
      infos[static_cast<size_t>(i)] = yolo::letterbox(*images[static_cast<size_t>(i)], static_cast<int>(S), slot);
    else
      std::fill(slot, slot + per_image, 114.f / 255.f);
  }
  StageTimes t;
  t.preprocess_ms = ms_since(t0);
  t0 = Clock::now();
  const HostTensor out = engine.infer(batch);
  t.inference_ms = ms_since(t0);
  t0 = Clock::now();
  const Shape& os = out.shape();
  KESTREL_CHECK(os.size() == 3 && os[0] == B, "the model output ", shape_str(os), " is not a [B, X, Y] detection head");
  if (head == yolo::HeadKind::Auto) head = yolo::detect_head(os);
  const int64_t channels = head == yolo::HeadKind::V8 ? os[1] : os[2];
  const int64_t anchors = head == yolo::HeadKind::V8 ? os[2] : os[1];
  std::vector<std::vector<yolo::Box>> result(static_cast<size_t>(n));
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < n; ++i) {
    auto& boxes = result[static_cast<size_t>(i)];
    boxes = yolo::nms(yolo::decode_candidates(out.data<float>() + i * channels * anchors, channels, anchors, head, nms), nms);
    yolo::scale_boxes(boxes, infos[static_cast<size_t>(i)]);
  }
  t.postprocess_ms = ms_since(t0);
  if (times) *times += t;
  return result;
}

std::vector<std::vector<yolo::Box>> detect_batch(InferenceEngine& engine, std::span<const image::Image* const> images,
                                                 yolo::HeadKind head, const yolo::NmsOptions& nms, StageTimes* times) {
  if (head == yolo::HeadKind::Auto) head = yolo::detect_head(engine.output_shape());
  if (ImageDetector* d = engine.image_detector()) return d->detect(images, head, nms, times);
  return reference_detect(engine, images, head, nms, times);
}

void warm_up(InferenceEngine& engine, std::span<const image::Image* const> images, yolo::HeadKind head,
             const yolo::NmsOptions& nms) {
  if (images.empty()) return;
  if (head == yolo::HeadKind::Auto) head = yolo::detect_head(engine.output_shape());
  ImageDetector* det = engine.image_detector();
  if (!det) {
    reference_detect(engine, images, head, nms);
    return;
  }
  try {
    for (int k = 0; k < det->depth(); ++k) det->submit(images, head, nms);
    while (det->in_flight() > 0) det->collect();
  } catch (...) {
    det->abandon();
    throw;
  }
}

}  // namespace kestrel::pipeline
