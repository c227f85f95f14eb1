// Validation: letterbox every image into the engine's batch, run it, decode + NMS with the reference
// semantics, map boxes back, and score with the pycocotools-exact evaluator.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>

#include "kestrel/pipeline.h"
#include "util/progress.h"

namespace kestrel::pipeline {

namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

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
  r.iou = options.iou >= 0 ? options.iou : (r.head == yolo::HeadKind::V5 ? 0.6 : 0.7);
  const int nc = head_classes(out_shape, r.head);
  if (nc != static_cast<int>(dataset.categories.size()))
    fail("the model predicts ", nc, " classes but the dataset has ", dataset.categories.size(),
         " categories: they do not match");
  yolo::NmsOptions nms = yolo::NmsOptions::validation(r.head);
  nms.conf = options.conf;
  nms.iou = r.iou;
  nms.max_det = options.max_det;

  const int64_t B = in_shape[0], S = in_shape[2];
  const size_t per_image = static_cast<size_t>(3 * S * S);
  HostTensor batch(DType::F32, in_shape);
  std::vector<yolo::LetterboxInfo> infos(static_cast<size_t>(B));
  std::vector<int64_t> ids(static_cast<size_t>(B));
  std::vector<std::string> errors(static_cast<size_t>(B));
  std::vector<int64_t> evaluated_ids;
  std::optional<util::ProgressBar> bar;
  if (options.progress) bar.emplace("val", static_cast<int64_t>(dataset.images.size()));
  const auto t_all = Clock::now();
  double pre_ms = 0, inf_ms = 0, post_ms = 0;

  for (size_t start = 0; start < dataset.images.size(); start += static_cast<size_t>(B)) {
    const int64_t n = std::min<int64_t>(B, static_cast<int64_t>(dataset.images.size() - start));
    auto t0 = Clock::now();
    // Decoding and letterboxing dominate the host side: one image per thread.
#pragma omp parallel for schedule(dynamic)
    for (int64_t i = 0; i < B; ++i) {
      float* slot = batch.data<float>() + static_cast<size_t>(i) * per_image;
      errors[i].clear();
      if (i >= n) {
        std::fill(slot, slot + per_image, 114.f / 255.f);
        continue;
      }
      const eval::ImageRecord& rec = dataset.images[start + static_cast<size_t>(i)];
      ids[i] = rec.id;
      try {
        image::Image img = image::read_image(rec.file);
        infos[i] = yolo::letterbox(img, static_cast<int>(S), slot);
      } catch (const Error& e) {
        errors[i] = e.what();
        std::fill(slot, slot + per_image, 114.f / 255.f);
      }
    }
    pre_ms += ms_since(t0);
    t0 = Clock::now();
    HostTensor out = engine.infer(batch);
    inf_ms += ms_since(t0);
    t0 = Clock::now();
    auto per_image_boxes = yolo::postprocess(out.data<float>(), out.shape(), r.head, nms);
    for (int64_t i = 0; i < n; ++i) {
      if (!errors[i].empty()) {
        std::fprintf(stderr, "kestrel: warning: skipped %s\n", errors[i].c_str());
        ++r.skipped;
        continue;
      }
      evaluated_ids.push_back(ids[i]);
      auto& boxes = per_image_boxes[static_cast<size_t>(i)];
      yolo::scale_boxes(boxes, infos[i]);
      for (const auto& b : boxes) {
        eval::Detection d;
        d.image_id = ids[i];
        d.category_id = dataset.category_id_for_class(b.cls);
        d.x = round_to(b.x1, 1e3);
        d.y = round_to(b.y1, 1e3);
        d.w = round_to(static_cast<double>(b.x2) - b.x1, 1e3);
        d.h = round_to(static_cast<double>(b.y2) - b.y1, 1e3);
        d.score = round_to(b.score, 1e5);
        r.detections.push_back(d);
      }
    }
    post_ms += ms_since(t0);
    if (bar) bar->advance(n);
  }
  if (bar) bar->finish();
  r.seconds = ms_since(t_all) / 1e3;
  r.images = static_cast<int>(evaluated_ids.size());
  if (r.images == 0) fail("none of the ", dataset.images.size(), " images could be read");
  const double k = 1.0 / static_cast<double>(dataset.images.size());
  r.speed = {pre_ms * k, inf_ms * k, post_ms * k};
  r.stats = eval::evaluate_bbox(evaluated_ids, dataset.categories, dataset.gt, r.detections);
  return r;
}

}  // namespace kestrel::pipeline
