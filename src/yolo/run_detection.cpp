// The batch loop shared by val, predict and bench --images: decoded images from the loader, batches
// of the engine's size, two in flight on an ImageDetector, results handed on in file order.
#include <deque>

#include "kestrel/pipeline.h"

namespace kestrel::pipeline {

RunTotals run_detection(InferenceEngine& engine, image::ImageLoader& loader, yolo::HeadKind head,
                        const yolo::NmsOptions& nms, bool reference_path,
                        const std::function<void(DetectedBatch&)>& sink) {
  const Shape in_shape = engine.input_shape();
  KESTREL_CHECK(in_shape.size() == 4, "the model input ", shape_str(in_shape), " is not an image batch");
  const int64_t B = in_shape[0];
  if (head == yolo::HeadKind::Auto) head = yolo::detect_head(engine.output_shape());
  ImageDetector* det = reference_path ? nullptr : engine.image_detector();
  RunTotals t;
  // Batches handed to the detector (or holding only failed files) whose results are not yet out.
  std::deque<std::pair<DetectedBatch, bool>> pending;

  auto deliver = [&](DetectedBatch& b, std::vector<std::vector<yolo::Box>> boxes) {
    t.stages += b.stages;
    b.boxes.assign(b.items.size(), {});
    size_t k = 0;
    for (size_t i = 0; i < b.items.size(); ++i)
      if (b.items[i].error.empty()) b.boxes[i] = std::move(boxes.at(k++));
    sink(b);
  };
  auto finish_front = [&] {
    auto [b, submitted] = std::move(pending.front());
    pending.pop_front();
    deliver(b, submitted ? det->collect(&b.stages) : std::vector<std::vector<yolo::Box>>{});
  };

  try {
    while (!loader.done()) {
      DetectedBatch b;
      std::vector<const image::Image*> ptrs;
      while (static_cast<int64_t>(ptrs.size()) < B && !loader.done()) {
        b.items.push_back(loader.next());
        const image::LoadedImage& li = b.items.back();
        t.decode_ms += li.decode_ms;
        if (li.error.empty()) ++t.images; else ++t.failed;
        if (li.error.empty()) ptrs.push_back(nullptr);
      }
      size_t k = 0;
      for (auto& li : b.items)
        if (li.error.empty()) ptrs[k++] = &li.image;
      if (!det) {
        std::vector<std::vector<yolo::Box>> boxes;
        if (!ptrs.empty())
          boxes = reference_path ? reference_detect(engine, ptrs, head, nms, &b.stages)
                                 : detect_batch(engine, ptrs, head, nms, &b.stages);
        deliver(b, std::move(boxes));
        continue;
      }
      if (!ptrs.empty()) {
        while (det->in_flight() >= det->depth()) finish_front();
        det->submit(ptrs, head, nms);
      }
      pending.emplace_back(std::move(b), !ptrs.empty());
    }
    while (!pending.empty()) finish_front();
  } catch (...) {
    // Leave the detector empty for the next run.
    while (det && det->in_flight() > 0) {
      try {
        det->collect(nullptr);
      } catch (...) {
      }
    }
    throw;
  }
  return t;
}

}  // namespace kestrel::pipeline
