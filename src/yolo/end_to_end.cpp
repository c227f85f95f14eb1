// `kestrel bench --images`: files in, boxes out, timed as a user's run would be.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <string>

#include "kestrel/image_loader.h"
#include "kestrel/pipeline.h"

namespace kestrel::pipeline {

EndToEndResult measure_end_to_end(InferenceEngine& engine, const std::vector<std::string>& images,
                                  const EndToEndOptions& options) {
  KESTREL_CHECK(!images.empty(), "no images to measure with");
  KESTREL_CHECK(options.passes >= 1, "at least one pass over the images is needed");
  const Shape in_shape = engine.input_shape();
  KESTREL_CHECK(in_shape.size() == 4, "the model input ", shape_str(in_shape), " is not an image batch");
  const int64_t B = in_shape[0];
  const yolo::HeadKind head = yolo::detect_head(engine.output_shape());

  // Warm-up on the first batch of images (graph capture, staging, lazy initialisation); the first
  // decoded image is kept for the latency below.
  image::Image first;
  {
    image::ImageLoader warm(std::vector<std::string>(images.begin(), images.begin() + std::min<size_t>(images.size(), B)),
                            options.decode_threads);
    std::vector<image::LoadedImage> loaded;
    while (!warm.done())
      if (image::LoadedImage li = warm.next(); li.error.empty()) loaded.push_back(std::move(li));
    std::vector<const image::Image*> ptrs;
    for (const auto& li : loaded) ptrs.push_back(&li.image);
    warm_up(engine, ptrs, head, options.nms);
    if (!loaded.empty()) first = std::move(loaded.front().image);
  }

  std::vector<std::string> all;
  all.reserve(images.size() * static_cast<size_t>(options.passes));
  for (int p = 0; p < options.passes; ++p) all.insert(all.end(), images.begin(), images.end());
  EndToEndResult r;
  const auto t0 = std::chrono::steady_clock::now();
  image::ImageLoader loader(std::move(all), options.decode_threads,
                            image::ImageLoader::window_for_batch(B, options.decode_threads));
  std::set<std::string> warned;  // each unreadable file once, not once per pass
  const RunTotals totals = run_detection(engine, loader, head, options.nms, false, [&](DetectedBatch& b) {
    for (const auto& boxes : b.boxes) r.detections += static_cast<int64_t>(boxes.size());
    for (const auto& li : b.items)
      if (!li.error.empty() && warned.insert(li.error).second)
        std::fprintf(stderr, "kestrel: warning: skipped %s\n", li.error.c_str());
  });
  r.images = totals.images;
  r.skipped = totals.failed;
  r.host = totals.host;
  const StageTimes& stages = totals.stages;
  const double decode_ms = totals.decode_ms;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (r.images == 0) fail("none of the ", images.size(), " images could be read: nothing was measured");
  r.images_per_s = static_cast<double>(r.images) / r.seconds;
  const double k = 1.0 / static_cast<double>(r.images);
  r.speed = {decode_ms * k, stages.preprocess_ms * k, stages.inference_ms * k, stages.postprocess_ms * k};
  r.device_preprocess_ms = stages.device_preprocess_ms * k;
  r.device_postprocess_ms = stages.device_postprocess_ms * k;
  // Latency of one decoded image in host memory to its boxes in host memory (batch 1 engines).
  if (B == 1 && !first.empty()) {
    std::vector<double> ms;
    const image::Image* one[] = {&first};
    for (int i = 0; i < 200; ++i) {
      const auto t = std::chrono::steady_clock::now();
      detect_batch(engine, one, head, options.nms);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count());
    }
    std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
    r.latency_ms = ms[ms.size() / 2];
  }
  return r;
}

}  // namespace kestrel::pipeline
