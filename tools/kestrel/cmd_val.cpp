// kestrel val MODEL --data PATH: COCO mAP on a labelled dataset (COCO json or YOLO layout).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "bench_stats.h"
#include "cli_checks.h"
#include "command.h"
#include "dataset_arg.h"
#include "engine_arg.h"
#include "int8_args.h"
#include "kestrel/pipeline.h"
#include "kestrel/yolo.h"
#include "util/paths.h"

namespace kestrel::cli {

namespace {
struct ValArgs {
  EngineSpec engine;
  Int8Args int8;
  std::string data, save_json, json;
  // The defaults are the library's (one definition: yolo::NmsOptions::validation()); the IoU default
  // depends on the head, so < 0 leaves it to the validator.
  float conf = yolo::NmsOptions::validation(yolo::HeadKind::V8).conf;
  double iou = -1;
  int max_det = yolo::NmsOptions::validation(yolo::HeadKind::V8).max_det;
  bool per_class = false, cpu_prepost = false;
  int workers = 0;
  std::string head = "auto";
};

int run_val(const ValArgs& a) {
  check_int8_options_used(a.int8, a.engine.precision == "int8");
  const eval::Dataset ds = load_val_dataset(a.data);
  // Outputs are checked before minutes of work, and never replace the model or the dataset's files.
  const std::vector<NamedInput> inputs = {{a.engine.model, "the model"}, {ds.annotations, "the dataset's annotation file"},
                                          {a.int8.cache, "the calibration cache"}};
  check_output(a.save_json, "--save-json", inputs);
  check_output(a.json, "--json", inputs);
  if (!a.save_json.empty() && util::same_path(a.save_json, a.json))
    throw UsageError("--save-json and --json name the same file " + a.json);
  for (const std::string* out : {&a.save_json, &a.json})
    if (!out->empty() && util::is_within(*out, ds.root))
      for (const auto& im : ds.images)
        if (util::same_path(*out, im.file))
          throw UsageError(*out + " is one of the dataset's images: refusing to overwrite an input");
  EngineSpec spec = a.engine;
  spec.int8 = &a.int8;
  auto engine = open_engine(spec);
  check_imgsz_applied(a.engine.imgsz, engine->input_shape(), a.engine.model);
  pipeline::ValOptions o;
  o.conf = a.conf;
  o.iou = a.iou;
  o.max_det = a.max_det;
  o.reference_path = a.cpu_prepost;
  o.decode_threads = a.workers;
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
  print_host_times(r.host, r.seconds);
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
    j["host"] = to_json(r.host);
    for (size_t i = 0; i < 12; ++i) j["stats"][eval::CocoStats::names()[i]] = r.stats.stats[i];
    j["map50_95"] = r.stats.stats[0];
    j["map50"] = r.stats.stats[1];
    write_json(a.json, j.dump(2));
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
  app->add_option("--conf", a->conf, "Confidence threshold")->check(finite_range(0.0, 1.0))->capture_default_str();
  app->add_option("--iou", a->iou,
                  "NMS IoU threshold (default " + std::to_string(yolo::NmsOptions::validation(yolo::HeadKind::V8).iou).substr(0, 3) +
                      "; " + std::to_string(yolo::NmsOptions::validation(yolo::HeadKind::V5).iou).substr(0, 3) + " for YOLOv5 heads)")->check(finite_range(0.0, 1.0));
  app->add_option("--max-det", a->max_det, "Detections kept per image")->check(CLI::Range(1, 100000))->capture_default_str();
  add_backend_option(app, a->engine.backend);
  add_precision_flags(app, a->engine.precision);
  add_int8_options(app, a->int8);
  app->add_option("--save-json", a->save_json, "Write the detections as COCO results JSON");
  app->add_option("--json", a->json, "Write the metrics as JSON");
  app->add_flag("--per-class", a->per_class, "Print AP per class");
  add_workers_option(app, a->workers);
  app->add_flag("--cpu-prepost", a->cpu_prepost,
                "Letterbox, decode and NMS on the CPU (the reference path) although the engine runs them on the GPU");
  app->add_option("--head", a->head, "Detection head layout: auto (from the output shape), v8 ([B,4+nc,A]) or v5 ([B,A,5+nc])")
      ->check(CLI::IsMember({"auto", "v8", "v5"}));
  return {app, [a] { return run_val(*a); }};
}

}  // namespace kestrel::cli
