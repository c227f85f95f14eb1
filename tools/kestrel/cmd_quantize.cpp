// kestrel quantize MODEL --calib PATH [-o model.qdq.onnx]: INT8 post-training quantization on the CPU.
// Calibrates the optimized FP32 graph (or reuses --calib-cache), decides each layer's precision
// (default policy, --layer-precision rules, --int8-auto), writes the Q/DQ ONNX of the plain graph and,
// with --val, measures the INT8 mAP on the CPU simulation of the engine.
#include <fnmatch.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "kestrel/image.h"
#include "kestrel/pipeline.h"
#include "kestrel/quant.h"
#include "model_arg.h"
#include "onnx/exporter.h"

namespace kestrel::cli {

namespace {
struct QuantizeArgs {
  std::string model, calib, out, cache, rules, val, json;
  int calib_images = 128;
  std::string algo = "percentile";
  double percentile = 99.99;
  bool no_default_policy = false, int8_auto = false, verbose = false;
  double auto_target = quant::AutoPrecision{}.target;
  int auto_images = 8;
  std::string float_precision = "fp16";
  int64_t imgsz = 0;
};

// `count` images spread evenly over the calibration set (the first ones are often one scene).
std::vector<std::string> spread(const std::vector<std::string>& images, size_t count) {
  if (images.size() <= count) return images;
  std::vector<std::string> out;
  for (size_t i = 0; i < count; ++i) out.push_back(images[i * images.size() / count]);
  return out;
}

void print_layers(const quant::QuantReport& r) {
  std::printf("\n%-44s %-6s %-12s %s\n", "layer", "prec", "input scale", "reason");
  for (const auto& l : r.layers) {
    char scale[32] = "-";
    if (l.input_scale > 0) std::snprintf(scale, sizeof scale, "%.6g", static_cast<double>(l.input_scale));
    std::printf("%-44s %-6s %-12s %s\n", l.node.c_str(), quant::precision_name(l.precision), scale, l.reason.c_str());
  }
  std::printf("\n");
}

int run_quantize(const QuantizeArgs& a, bool images_explicit) {
  if (a.out.empty() && a.val.empty() && a.cache.empty())
    throw UsageError("nothing to do: pass -o FILE (the Q/DQ model), --val DATA and/or --calib-cache FILE");
  quant::CalibOptions co;
  co.images = a.calib;
  co.max_images = a.calib_images;
  co.images_explicit = images_explicit;
  co.algo = quant::parse_calib_algo(a.algo);
  co.percentile = a.percentile;
  co.cache_path = a.cache;
  quant::QuantOptions qo;
  if (!a.rules.empty()) qo.rules = quant::parse_layer_rules(a.rules);
  qo.default_policy = !a.no_default_policy;
  qo.float_precision = quant::parse_precision(a.float_precision);

  // The plain graph is what gets exported; the fused one is what engines run, so what calibration and
  // the precision decisions see.
  quant::ModelForms forms = quant::plain_and_fused(load_graph(a.model, 0, a.imgsz));
  const Graph& plain = forms.plain;
  const Graph& fused = forms.fused;

  // A rule that matches nothing is a typo: say so before a minute of calibration, not after.
  for (const quant::LayerRule& r : qo.rules) {
    bool any = false;
    for (const Node& n : fused.nodes) any = any || fnmatch(r.pattern.c_str(), n.name.c_str(), 0) == 0;
    if (!any)
      throw UsageError("--layer-precision pattern '" + r.pattern + "' matches no layer (layer names look like '" +
                       (fused.nodes.empty() ? std::string() : fused.nodes.front().name) + "')");
  }
  const quant::Calibration cal = quant::calibrate(fused, co);
  if (cal.from_cache)
    std::printf("calibration: %zu scales from %s\n", cal.scales.size(), a.cache.c_str());
  else
    std::printf("calibration: %zu tensors on %zu images (%s) in %.1f s%s%s\n", cal.scales.size(), cal.images.size(),
                cal.key.algorithm.c_str(), cal.seconds, a.cache.empty() ? "" : ", cache written to ", a.cache.c_str());
  qo.activation_scales = cal.scales;
  if (a.int8_auto) {
    qo.automatic.enabled = true;
    qo.automatic.target = a.auto_target;
    const auto images = cal.images.empty() ? quant::calibration_images(co) : cal.images;
    qo.automatic.inputs = quant::load_inputs(fused, spread(images, static_cast<size_t>(a.auto_images)));
  }
  Graph q = fused;
  const quant::QuantReport report = quant::quantize_graph(q, qo);
  std::printf("%s", report.summary().c_str());
  if (a.verbose) print_layers(report);

  if (!a.out.empty()) {
    Graph qdq_plain = plain;
    quant::apply_to_plain_graph(qdq_plain, q);
    ExportOptions eo;
    eo.metadata[quant::kPrecisionMetadataKey] = quant::encode_precisions(q);
    export_onnx(qdq_plain, a.out, eo);
    // Read it back the way any consumer will: a file we cannot re-import is not written silently.
    const Graph back = quant::load_qdq_onnx(a.out, qo.float_precision);
    int pairs = 0;
    for (const Node& n : qdq_plain.nodes) pairs += n.op == "QuantizeLinear";
    std::printf("wrote %s: %d quantized activations, %d int8 convs (re-import checked: %zu layers)\n", a.out.c_str(),
                pairs, report.int8, back.nodes.size());
  }

  if (!a.val.empty()) {
    eval::LoadOptions lo;
    lo.size_probe = [](const std::string& p) {
      const image::ImageSize s = image::probe_size(p);
      return std::pair<int, int>{s.width, s.height};
    };
    eval::Dataset ds = eval::load_dataset(a.val, lo);
    for (auto& w : ds.warnings) std::fprintf(stderr, "kestrel: warning: %s\n", w.c_str());
    auto engine = quant::make_simulated_engine(q);
    std::printf("val %s on %s (%zu images), %s\n", a.model.c_str(), a.val.c_str(), ds.images.size(),
                engine->description().c_str());
    std::fflush(stdout);
    const pipeline::ValResult r = pipeline::validate(*engine, ds);
    std::printf("%s\n", eval::format_stats(r.stats).c_str());
    std::printf("%d images (%d skipped), %.1f s\n", r.images, r.skipped, r.seconds);
    if (!a.json.empty()) {
      nlohmann::json j;
      j["model"] = a.model;
      j["calibration"] = {{"algorithm", cal.key.algorithm}, {"images", cal.key.image_count}, {"from_cache", cal.from_cache}};
      j["policy"] = a.int8_auto ? "auto" : (a.no_default_policy ? "int8-everywhere" : "default");
      j["convs"] = {{"int8", report.int8}, {"fp16", report.fp16}, {"fp32", report.fp32}};
      if (report.auto_error >= 0) j["auto_error"] = report.auto_error;
      j["map50_95"] = r.stats.stats[0];
      j["map50"] = r.stats.stats[1];
      std::ofstream f(a.json);
      if (!(f << j.dump(2) << "\n")) fail("cannot write ", a.json);
    }
  }
  return 0;
}
}  // namespace

Command add_quantize(CLI::App& root) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* app = root.add_subcommand(
      "quantize", "INT8 post-training quantization: calibrate, choose layer precisions, write a Q/DQ ONNX model");
  app->add_option("model", a->model, "ONNX file or built-in model name")->required();
  app->add_option("--calib", a->calib, "Folder of calibration images (training images, never the validation set)")
      ->required();
  auto* n = app->add_option("--calib-images", a->calib_images,
                            "Calibration images to use (default: 128, or all when fewer; an error when given and "
                            "fewer are available)")
                ->check(CLI::Range(1, 1000000));
  app->add_option("--calib-algo", a->algo,
                  "Calibrator: percentile (of |x|, --percentile), minmax or entropy (TensorRT's KL search; clips "
                  "YOLO's SiLU activations too hard, see bench/RESULTS.md)")
      ->check(CLI::IsMember({"entropy", "minmax", "percentile"}))
      ->capture_default_str();
  app->add_option("--percentile", a->percentile, "Percentile of |x| for --calib-algo percentile")
      ->check(CLI::Range(50.0, 100.0))
      ->capture_default_str();
  app->add_option("--calib-cache", a->cache,
                  "Calibration cache: reused when model, preprocessing, algorithm and images all match, else written");
  app->add_option("-o,--output", a->out, "Write the Q/DQ ONNX model here (e.g. model.qdq.onnx)");
  app->add_option("--layer-precision", a->rules,
                  "PATTERN:int8|fp16|fp32,... glob on layer names, e.g. '/model.22/*:fp16' (later entries win)");
  app->add_flag("--no-default-policy", a->no_default_policy,
                "Quantize the detection head's output convs too (default: they and the decode stay fp16)");
  app->add_flag("--int8-auto", a->int8_auto,
                "Measure each layer's sensitivity and promote the worst to fp16 until the output error is within "
                "--auto-target");
  app->add_option("--auto-target", a->auto_target, "Output error (relative L2 vs FP32) --int8-auto aims for")
      ->check(CLI::Range(1e-6, 10.0))
      ->capture_default_str();
  app->add_option("--auto-images", a->auto_images, "Calibration images --int8-auto measures on")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app->add_option("--float-precision", a->float_precision, "Precision of the layers that are not int8: fp16 or fp32")
      ->check(CLI::IsMember({"fp16", "fp32"}))
      ->capture_default_str();
  app->add_option("--imgsz", a->imgsz, "Input size for models with dynamic spatial dims")->check(CLI::Range(32, 8192));
  app->add_option("--val", a->val, "Also validate the INT8 simulation on this dataset (COCO mAP)");
  app->add_option("--json", a->json, "With --val: write the figures as JSON");
  app->add_flag("-v,--verbose", a->verbose, "Print every conv with its precision, input scale and reason");
  return {app, [a, n] { return run_quantize(*a, n->count() > 0); }};
}

}  // namespace kestrel::cli
