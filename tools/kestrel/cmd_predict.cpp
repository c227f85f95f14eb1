// kestrel predict MODEL SOURCE...: detections on images, annotated pictures and JSON.
#include <cstdio>
#include <fstream>

#include "command.h"
#include "engine_arg.h"
#include "int8_args.h"
#include "kestrel/pipeline.h"

namespace kestrel::cli {

namespace {
struct PredictArgs {
  EngineSpec engine;
  Int8Args int8;
  std::vector<std::string> sources;
  std::string out = "runs/predict", save_json;
  float conf = 0.25f;
  double iou = 0.7;
  int max_det = 300;
  bool no_save = false;
  std::string head = "auto";
};

int run_predict(const PredictArgs& a) {
  const auto images = pipeline::expand_sources(a.sources);
  EngineSpec spec = a.engine;
  spec.int8 = &a.int8;
  auto engine = open_engine(spec);
  pipeline::PredictOptions o;
  o.conf = a.conf;
  o.iou = a.iou;
  o.max_det = a.max_det;
  o.out_dir = a.no_save ? "" : a.out;
  o.head = a.head == "v8" ? yolo::HeadKind::V8 : a.head == "v5" ? yolo::HeadKind::V5 : yolo::HeadKind::Auto;
  const auto preds = pipeline::predict(*engine, images, o);
  int failed = 0;
  size_t boxes = 0;
  for (auto& p : preds) failed += !p.error.empty(), boxes += p.boxes.size();
  const Shape out = engine->output_shape();
  const auto kind = o.head == yolo::HeadKind::Auto ? yolo::detect_head(out) : o.head;
  const auto names = pipeline::class_names(engine->metadata(), static_cast<int>(kind == yolo::HeadKind::V5 ? out[2] - 5 : out[1] - 4));
  if (!a.save_json.empty()) {
    std::ofstream f(a.save_json);
    if (!(f << pipeline::predictions_json(preds, names) << "\n")) fail("cannot write ", a.save_json);
  }
  std::printf("%zu images, %zu detections%s%s%s\n", preds.size() - failed, boxes,
              o.out_dir.empty() ? "" : ", annotated images in ", o.out_dir.c_str(),
              a.save_json.empty() ? "" : (", JSON in " + a.save_json).c_str());
  if (failed) std::fprintf(stderr, "kestrel: %d of %zu images could not be read\n", failed, preds.size());
  return failed == static_cast<int>(preds.size()) ? kExitFailure : 0;
}
}  // namespace

Command add_predict(CLI::App& root) {
  auto a = std::make_shared<PredictArgs>();
  CLI::App* app = root.add_subcommand("predict", "Detect objects in images: annotated pictures and JSON");
  app->add_option("model", a->engine.model, "ONNX file, built-in model name or engine file")->required();
  app->add_option("sources", a->sources, "Image files, folders or glob patterns")->required();
  app->add_option("--out", a->out, "Folder for annotated images")->capture_default_str();
  app->add_flag("--no-save", a->no_save, "Do not write annotated images");
  app->add_option("--head", a->head, "Detection head layout: auto (from the output shape), v8 ([B,4+nc,A]) or v5 ([B,A,5+nc])")
      ->check(CLI::IsMember({"auto", "v8", "v5"}));
  app->add_option("--save-json", a->save_json, "Write every detection as JSON");
  app->add_option("--conf", a->conf, "Confidence threshold")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  app->add_option("--iou", a->iou, "NMS IoU threshold")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  app->add_option("--max-det", a->max_det, "Detections kept per image")->check(CLI::Range(1, 100000));
  app->add_option("--imgsz", a->engine.imgsz, "Input size for models with dynamic spatial dims")->check(CLI::Range(32, 8192));
  add_backend_option(app, a->engine.backend);
  add_precision_flags(app, a->engine.precision);
  add_int8_options(app, a->int8);
  return {app, [a] { return run_predict(*a); }};
}

}  // namespace kestrel::cli
