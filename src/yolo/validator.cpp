// Validation: decode the images on a thread pool, run them through the engine in batches (letterbox,
// network, decode + NMS: on the GPU for CUDA engines, the CPU reference otherwise), and score the
// detections with the pycocotools-exact evaluator.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>

#include "kestrel/image_loader.h"
#include "kestrel/pipeline.h"
#include "util/stopwatch.h"
#include "util/progress.h"

namespace kestrel::pipeline {

namespace {
using util::Clock;
using util::ms_since;

// Ultralytics writes COCO results rounded (bbox to 3 decimals, score to 5); the reference figures were
// computed from such files, so round the same way.
double round_to(double v, double scale) { return std::nearbyint(v * scale) / scale; }

int head_classes(const Shape& out, yolo::HeadKind kind) {
  return static_cast<int>(kind == yolo::HeadKind::V5 ? out[2] - 5 : out[1] - 4);
}
}  // namespace

ValResult validate(InferenceEngine& engine, const eval::Dataset& dataset, const ValOptions& options) {
  const Shape in_shape = engine.input_shape();
  const Shape out_shape = engine.output_shape();
  KESTREL_CHECK(in_shape.size() == 4 && in_shape[1] == 3 && in_shape[2] == in_shape[3],
                "the model input ", shape_str(in_shape), " is not a square [B,3,S,S] image batch");
  if (dataset.images.empty()) fail("the dataset at ", dataset.root, " has no images");
  ValResult r;
  r.head = options.head == yolo::HeadKind::Auto ? yolo::detect_head(out_shape) : options.head;
  r.iou = options.iou >= 0 ? options.iou : yolo::NmsOptions::validation(r.head).iou;
  const int nc = head_classes(out_shape, r.head);
  if (nc != static_cast<int>(dataset.categories.size()))
    fail("the model predicts ", nc, " classes but the dataset has ", dataset.categories.size(),
         " categories: they do not match");
  yolo::NmsOptions nms = yolo::NmsOptions::validation(r.head);
  nms.conf = options.conf;
  nms.iou = r.iou;
  nms.max_det = options.max_det;

  const int64_t B = in_shape[0];
  // Warm-up, as Ultralytics' val does: the first batch would otherwise pay for allocations and the
  // CUDA graph's capture inside the timed run.
  if (!options.reference_path && engine.image_detector()) {
    const image::Image grey = image::Image::filled(static_cast<int>(in_shape[3]), static_cast<int>(in_shape[2]), 114, 114, 114);
    warm_up(engine, std::vector<const image::Image*>(static_cast<size_t>(B), &grey), r.head, nms);
  }
  std::vector<std::string> files;
  files.reserve(dataset.images.size());
  for (const auto& rec : dataset.images) files.push_back(rec.file);
  std::vector<int64_t> evaluated_ids;
  std::optional<util::ProgressBar> bar;
  if (options.progress) bar.emplace("val", static_cast<int64_t>(dataset.images.size()));
  const auto t_all = Clock::now();
  // Decoding runs ahead on a thread pool while the engine works on the batches before.
  image::ImageLoader loader(std::move(files), options.decode_threads,
                            image::ImageLoader::window_for_batch(B, options.decode_threads));
  const RunTotals totals = run_detection(engine, loader, r.head, nms, options.reference_path, [&](DetectedBatch& b) {
    for (size_t i = 0; i < b.items.size(); ++i) {
      const image::LoadedImage& li = b.items[i];
      if (!li.error.empty()) {
        std::fprintf(stderr, "kestrel: warning: skipped %s\n", li.error.c_str());
        ++r.skipped;
        continue;
      }
      const int64_t id = dataset.images[li.index].id;
      evaluated_ids.push_back(id);
      for (const auto& box : b.boxes[i]) {
        eval::Detection d;
        d.image_id = id;
        d.category_id = dataset.category_id_for_class(box.cls);
        d.x = round_to(box.x1, 1e3);
        d.y = round_to(box.y1, 1e3);
        d.w = round_to(static_cast<double>(box.x2) - box.x1, 1e3);
        d.h = round_to(static_cast<double>(box.y2) - box.y1, 1e3);
        d.score = round_to(box.score, 1e5);
        r.detections.push_back(d);
      }
    }
    if (bar) bar->advance(static_cast<int64_t>(b.items.size()));
  });
  if (bar) bar->finish();
  r.seconds = ms_since(t_all) / 1e3;
  r.images = static_cast<int>(evaluated_ids.size());
  if (r.images == 0) fail("none of the ", dataset.images.size(), " images could be read");
  const double k = 1.0 / static_cast<double>(dataset.images.size());
  r.speed = {totals.decode_ms * k, totals.stages.preprocess_ms * k, totals.stages.inference_ms * k,
             totals.stages.postprocess_ms * k};
  r.stages = totals.stages;
  r.host = totals.host;
  r.stats = eval::evaluate_bbox(evaluated_ids, dataset.categories, dataset.gt, r.detections);
  return r;
}

}  // namespace kestrel::pipeline
