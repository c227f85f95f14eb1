// kestrel predict MODEL SOURCE...: detections on images, annotated pictures and JSON.
#include <cstdio>
#include <filesystem>

#include "cli_checks.h"
#include "command.h"
#include "engine_arg.h"
#include "int8_args.h"
#include "kestrel/image.h"
#include "kestrel/pipeline.h"
#include "kestrel/yolo.h"
#include "util/paths.h"

namespace kestrel::cli {

namespace {
struct PredictArgs {
  EngineSpec engine;
  Int8Args int8;
  std::vector<std::string> sources;
  std::string out = "runs/predict", save_json;
  // The defaults are the library's (one definition: yolo::NmsOptions::prediction()).
  float conf = yolo::NmsOptions::prediction().conf;
  double iou = yolo::NmsOptions::prediction().iou;
  int max_det = yolo::NmsOptions::prediction().max_det;
  bool no_save = false, out_set = false;
  std::string head = "auto";
  int workers = 0;
};

int run_predict(const PredictArgs& a) {
  // Folders are listed here, so that a broken entry (a dangling or looping symlink, an unreadable file)
  // is a warning naming it instead of an error that ends the run.
  check_int8_options_used(a.int8, a.engine.precision == "int8");
  std::vector<std::string> sources;
  for (const std::string& s : a.sources) {
    std::error_code ec;
    if (!std::filesystem::is_directory(s, ec)) {
      sources.push_back(s);
      continue;
    }
    std::vector<std::string> problems;
    const std::vector<std::string> found = image::folder_images(s, &problems);
    for (const std::string& p : problems) std::fprintf(stderr, "kestrel: warning: %s\n", p.c_str());
    if (found.empty()) fail("no images (.jpg, .jpeg, .png) in folder ", s);
    sources.insert(sources.end(), found.begin(), found.end());
  }
  const auto images = pipeline::expand_sources(sources);
  if (a.no_save && a.out_set) throw UsageError("--out has no effect with --no-save");
  // Before any work: the JSON and the annotated pictures must not replace an input, or each other.
  std::vector<NamedInput> inputs = {{a.engine.model, "the model"}, {a.int8.cache, "the calibration cache"}};
  for (const std::string& im : images) inputs.push_back({im, "one of the images"});
  check_output(a.save_json, "--save-json", inputs);
  if (!a.no_save) {
    const auto pictures = yolo::annotated_image_paths(a.out, images);  // refuses sources and name collisions
    if (!a.save_json.empty())
      for (const std::string& p : pictures)
        if (util::same_path(p, a.save_json))
          throw UsageError("--save-json " + a.save_json + " is also an annotated picture's path");
  }
  EngineSpec spec = a.engine;
  spec.int8 = &a.int8;
  auto engine = open_engine(spec);
  check_imgsz_applied(a.engine.imgsz, engine->input_shape(), a.engine.model);
  pipeline::PredictOptions o;
  o.conf = a.conf;
  o.iou = a.iou;
  o.max_det = a.max_det;
  o.out_dir = a.no_save ? "" : a.out;
  o.decode_threads = a.workers;
  o.head = a.head == "v8" ? yolo::HeadKind::V8 : a.head == "v5" ? yolo::HeadKind::V5 : yolo::HeadKind::Auto;
  const auto preds = pipeline::predict(*engine, images, o);
  int failed = 0;
  size_t boxes = 0;
  for (auto& p : preds) failed += !p.error.empty(), boxes += p.boxes.size();
  const Shape out = engine->output_shape();
  const auto kind = o.head == yolo::HeadKind::Auto ? yolo::detect_head(out) : o.head;
  const auto names = pipeline::class_names(engine->metadata(), static_cast<int>(kind == yolo::HeadKind::V5 ? out[2] - 5 : out[1] - 4));
  if (!a.save_json.empty()) {
    write_json(a.save_json, pipeline::predictions_json(preds, names));
  }
  std::printf("%zu images, %zu detections%s%s%s\n", preds.size() - failed, boxes,
              o.out_dir.empty() ? "" : ", annotated images in ", o.out_dir.c_str(),
              a.save_json.empty() ? "" : (", JSON in " + a.save_json).c_str());
  // The warnings above say what went wrong with each (reading, drawing or writing its picture).
  if (failed) std::fprintf(stderr, "kestrel: %d of %zu images failed (see the warnings above)\n", failed, preds.size());
  return failed == static_cast<int>(preds.size()) ? kExitFailure : 0;
}
}  // namespace

Command add_predict(CLI::App& root) {
  auto a = std::make_shared<PredictArgs>();
  CLI::App* app = root.add_subcommand("predict", "Detect objects in images: annotated pictures and JSON");
  app->add_option("model", a->engine.model, "ONNX file, built-in model name or engine file")->required();
  app->add_option("sources", a->sources, "Image files, folders or glob patterns")->required();
  app->add_option("--out", a->out, "Folder for annotated images")->capture_default_str()->each([a](const std::string&) {
    a->out_set = true;
  });
  app->add_flag("--no-save", a->no_save, "Do not write annotated images");
  add_workers_option(app, a->workers);
  app->add_option("--head", a->head, "Detection head layout: auto (from the output shape), v8 ([B,4+nc,A]) or v5 ([B,A,5+nc])")
      ->check(CLI::IsMember({"auto", "v8", "v5"}));
  app->add_option("--save-json", a->save_json, "Write every detection as JSON");
  app->add_option("--conf", a->conf, "Confidence threshold")->check(finite_range(0.0, 1.0))->capture_default_str();
  app->add_option("--iou", a->iou, "NMS IoU threshold")->check(finite_range(0.0, 1.0))->capture_default_str();
  app->add_option("--max-det", a->max_det, "Detections kept per image")->check(CLI::Range(1, 100000))->capture_default_str();
  app->add_option("--imgsz", a->engine.imgsz, "Input size for models with dynamic spatial dims")->check(CLI::Range(32, 8192));
  add_backend_option(app, a->engine.backend);
  add_precision_flags(app, a->engine.precision);
  add_int8_options(app, a->int8);
  return {app, [a] { return run_predict(*a); }};
}

}  // namespace kestrel::cli
