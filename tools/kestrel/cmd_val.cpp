// kestrel val MODEL --data PATH: COCO mAP on a labelled dataset (COCO json or YOLO layout).
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "dataset_arg.h"
#include "engine_arg.h"
#include "int8_args.h"
#include "kestrel/pipeline.h"

namespace kestrel::cli {

namespace {
struct ValArgs {
  EngineSpec engine;
  Int8Args int8;
  std::string data, save_json, json;
  float conf = 0.001f;
  double iou = -1;
  int max_det = 300;
  bool per_class = false, cpu_prepost = false;
  std::string head = "auto";
};

int run_val(const ValArgs& a) {
  const eval::Dataset ds = load_val_dataset(a.data);
  EngineSpec spec = a.engine;
  spec.int8 = &a.int8;
  auto engine = open_engine(spec);
  pipeline::ValOptions o;
  o.conf = a.conf;
  o.iou = a.iou;
  o.max_det = a.max_det;
  o.reference_path = a.cpu_prepost;
  if (a.cpu_prepost && !engine->image_detector())
    throw UsageError("--cpu-prepost changes nothing here: the " + engine->description() + " backend letterboxes and runs NMS on the CPU already");
  o.head = a.head == "v8" ? yolo::HeadKind::V8 : a.head == "v5" ? yolo::HeadKind::V5 : yolo::HeadKind::Auto;
  std::printf("val %s on %s (%zu images), %s, input %s\n", a.engine.model.c_str(), a.data.c_str(), ds.images.size(),
              engine->description().c_str(), shape_str(engine->input_shape()).c_str());
  std::fflush(stdout);
  pipeline::ValResult r = pipeline::validate(*engine, ds, o);
  std::printf("%s\n", eval::format_stats(r.stats).c_str());
  if (a.per_class) {
    std::printf("\n%-20s %7s %9s %8s %8s\n", "class", "images", "instances", "AP50", "AP");
    for (auto& c : r.stats.per_class)
      if (c.instances > 0)
        std::printf("%-20s %7d %9d %8.4f %8.4f\n", c.name.c_str(), c.images, c.instances, c.ap50, c.ap);
  }
  // Ultralytics' speed line, with decoding (on a thread pool, overlapped with the rest) in front.
  std::printf("\nSpeed: %.2fms decode, %.3fms preprocess, %.3fms inference, %.3fms postprocess per image; "
              "%d images (%d skipped) in %.2f s: %.1f images/s (NMS IoU %.2f)\n",
              r.speed.decode_ms, r.speed.preprocess_ms, r.speed.inference_ms, r.speed.postprocess_ms, r.images, r.skipped,
              r.seconds, r.images / r.seconds, r.iou);
  if (!a.save_json.empty()) {
    eval::write_coco_results(a.save_json, r.detections);
    std::printf("detections written to %s\n", a.save_json.c_str());
  }
  if (!a.json.empty()) {
    nlohmann::json j;
    j["model"] = a.engine.model;
    j["data"] = a.data;
    j["backend"] = engine->description();
    j["images"] = r.images;
    j["skipped"] = r.skipped;
    j["seconds"] = r.seconds;
    j["images_per_s"] = r.images / r.seconds;
    j["speed_ms_per_image"] = {{"decode", r.speed.decode_ms}, {"preprocess", r.speed.preprocess_ms},
                               {"inference", r.speed.inference_ms}, {"postprocess", r.speed.postprocess_ms},
                               {"device_preprocess", r.stages.device_preprocess_ms / r.images},
                               {"device_postprocess", r.stages.device_postprocess_ms / r.images}};
    for (size_t i = 0; i < 12; ++i) j["stats"][eval::CocoStats::names()[i]] = r.stats.stats[i];
    j["map50_95"] = r.stats.stats[0];
    j["map50"] = r.stats.stats[1];
    std::ofstream f(a.json);
    if (!(f << j.dump(2) << "\n")) fail("cannot write ", a.json);
  }
  return 0;
}
}  // namespace

Command add_val(CLI::App& root) {
  auto a = std::make_shared<ValArgs>();
  CLI::App* app = root.add_subcommand("val", "Validate a detector on a labelled dataset: COCO mAP (pycocotools-exact)");
  app->add_option("model", a->engine.model, "ONNX file, built-in model name or engine file")->required();
  app->add_option("--data", a->data, "Dataset: COCO folder/json (instances*.json + images/) or YOLO layout")->required();
  app->add_option("--imgsz", a->engine.imgsz, "Input size for models with dynamic spatial dims")->check(CLI::Range(32, 8192));
  app->add_option("--batch", a->engine.batch, "Batch size")->check(CLI::Range(1, 1024));
  app->add_option("--conf", a->conf, "Confidence threshold")->check(CLI::Range(0.0, 1.0));
  app->add_option("--iou", a->iou, "NMS IoU threshold (default 0.7; 0.6 for YOLOv5 heads)")->check(CLI::Range(0.0, 1.0));
  app->add_option("--max-det", a->max_det, "Detections kept per image")->check(CLI::Range(1, 100000));
  add_backend_option(app, a->engine.backend);
  add_precision_flags(app, a->engine.precision);
  add_int8_options(app, a->int8);
  app->add_option("--save-json", a->save_json, "Write the detections as COCO results JSON");
  app->add_option("--json", a->json, "Write the metrics as JSON");
  app->add_flag("--per-class", a->per_class, "Print AP per class");
  app->add_flag("--cpu-prepost", a->cpu_prepost,
                "Letterbox, decode and NMS on the CPU (the reference path) although the engine runs them on the GPU");
  app->add_option("--head", a->head, "Detection head layout: auto (from the output shape), v8 ([B,4+nc,A]) or v5 ([B,A,5+nc])")
      ->check(CLI::IsMember({"auto", "v8", "v5"}));
  return {app, [a] { return run_val(*a); }};
}

}  // namespace kestrel::cli
