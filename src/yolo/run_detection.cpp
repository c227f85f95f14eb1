// The batch loop shared by val, predict and bench --images: decoded images from the loader, batches
// of the engine's size, two in flight on an ImageDetector, results handed on in file order.
#include <deque>

#include "kestrel/pipeline.h"
#include "util/stopwatch.h"

namespace kestrel::pipeline {

namespace {
using util::Clock;
using util::ms_since;
}  // namespace

RunTotals run_detection(InferenceEngine& engine, image::ImageLoader& loader, yolo::HeadKind head,
                        const yolo::NmsOptions& nms, bool reference_path,
                        const std::function<void(DetectedBatch&)>& sink) {
  const Shape in_shape = engine.input_shape();
  KESTREL_CHECK(in_shape.size() == 4, "the model input ", shape_str(in_shape), " is not an image batch");
  const int64_t B = in_shape[0];
  if (head == yolo::HeadKind::Auto) head = yolo::detect_head(engine.output_shape());
  ImageDetector* det = reference_path ? nullptr : engine.image_detector();
  RunTotals t;
  const Clock::time_point start = Clock::now();
  // Batches handed to the detector (or holding only failed files) whose results are not yet out.
  std::deque<std::pair<DetectedBatch, bool>> pending;

  auto deliver = [&](DetectedBatch& b, std::vector<std::vector<yolo::Box>> boxes) {
    t.stages += b.stages;
    b.boxes.assign(b.items.size(), {});
    size_t k = 0;
    for (size_t i = 0; i < b.items.size(); ++i)
      if (b.items[i].error.empty()) b.boxes[i] = std::move(boxes.at(k++));
    const Clock::time_point t0 = Clock::now();
    sink(b);
    t.host.sink_ms += ms_since(t0);
  };
  auto finish_front = [&] {
    auto [b, submitted] = std::move(pending.front());
    pending.pop_front();
    const Clock::time_point t0 = Clock::now();
    std::vector<std::vector<yolo::Box>> boxes = submitted ? det->collect(&b.stages) : std::vector<std::vector<yolo::Box>>{};
    t.host.results_ms += ms_since(t0);
    deliver(b, std::move(boxes));
  };
  auto next_image = [&](DetectedBatch& b) -> const image::LoadedImage& {
    const Clock::time_point t0 = Clock::now();
    b.items.push_back(loader.next());
    t.host.wait_images_ms += ms_since(t0);
    const image::LoadedImage& li = b.items.back();
    t.decode_ms += li.decode_ms;
    if (li.error.empty()) ++t.images; else ++t.failed;
    return li;
  };

  try {
    while (!loader.done()) {
      DetectedBatch b;
      if (!det) {
        int64_t taken = 0;
        while (taken < B && !loader.done()) taken += next_image(b).error.empty() ? 1 : 0;
        std::vector<const image::Image*> ptrs;
        for (const auto& li : b.items)
          if (li.error.empty()) ptrs.push_back(&li.image);
        std::vector<std::vector<yolo::Box>> boxes;
        if (!ptrs.empty())
          boxes = reference_path ? reference_detect(engine, ptrs, head, nms, &b.stages)
                                 : detect_batch(engine, ptrs, head, nms, &b.stages);
        deliver(b, std::move(boxes));
        continue;
      }
      // The detector stages each image as it arrives, so its copy overlaps the wait for the next; the
      // slot it stages into must be free first.
      while (det->in_flight() >= det->depth()) finish_front();
      int64_t added = 0;
      while (added < B && !loader.done()) {
        const image::LoadedImage& li = next_image(b);
        if (!li.error.empty()) continue;
        const Clock::time_point t0 = Clock::now();
        det->add(li.image);
        t.host.staging_ms += ms_since(t0);
        ++added;
      }
      if (added > 0) {
        const Clock::time_point t0 = Clock::now();
        det->submit_added(head, nms);
        t.host.staging_ms += ms_since(t0);
        if (t.host.first_batch_ms == 0) t.host.first_batch_ms = ms_since(start);
      }
      pending.emplace_back(std::move(b), added > 0);
    }
    while (!pending.empty()) finish_front();
  } catch (...) {
    if (det) det->abandon();
    throw;
  }
  return t;
}

}  // namespace kestrel::pipeline
