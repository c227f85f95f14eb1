// kestrel quantize MODEL --calib PATH [-o model.qdq.onnx]: INT8 post-training quantization on the CPU.
// Calibrates the optimized FP32 graph (or reuses --calib-cache), decides each layer's precision
// (default policy, --layer-precision rules, --int8-auto), writes the Q/DQ ONNX of the plain graph and,
// with --val, measures the INT8 mAP on the CPU simulation of the engine.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli_checks.h"
#include "command.h"
#include "dataset_arg.h"
#include "int8_args.h"
#include "kestrel/pipeline.h"
#include "kestrel/quant.h"
#include "model_arg.h"
#include "util/paths.h"

namespace kestrel::cli {

namespace {
struct QuantizeArgs {
  std::string model, out, val, json;
  Int8Args int8;
  bool verbose = false;
  std::string float_precision = "fp16";
  int64_t imgsz = 0;
};

void print_layers(const quant::QuantReport& r) {
  std::printf("\n%-44s %-6s %-12s %s\n", "layer", "prec", "input scale", "reason");
  for (const auto& l : r.layers) {
    char scale[32] = "-";
    if (l.input_scale > 0) std::snprintf(scale, sizeof scale, "%.6g", static_cast<double>(l.input_scale));
    std::printf("%-44s %-6s %-12s %s\n", l.node.c_str(), quant::precision_name(l.precision), scale, l.reason.c_str());
  }
  std::printf("\n");
}

int run_quantize(const QuantizeArgs& a) {
  if (a.out.empty() && a.val.empty() && a.int8.cache.empty())
    throw UsageError("nothing to do: pass -o FILE (the Q/DQ model), --val DATA and/or --calib-cache FILE");
  if (is_qdq_model(a.model)) throw UsageError(a.model + " is already quantized (it has QuantizeLinear nodes)");
  if (!a.json.empty() && a.val.empty()) throw UsageError("--json writes the --val figures: it has no effect without --val");
  // Outputs are checked before the calibration minute, and never replace an input.
  std::vector<NamedInput> inputs = {{a.model, "the model"}, {a.int8.cache, "the calibration cache"}};
  check_output(a.out, "-o", inputs);
  inputs.push_back({a.out, "the -o model"});
  check_output(a.json, "--json", inputs);
  if (util::same_path(a.int8.cache, a.out)) throw UsageError("-o and --calib-cache name the same file " + a.out);
  const quant::LayerPrecision float_precision = quant::parse_precision(a.float_precision);
  const Int8Model m = int8_model(a.model, 0, a.imgsz, a.int8, float_precision);
  const Graph& q = m.qdq;
  const quant::QuantReport& report = m.report;
  const quant::Calibration& cal = m.calibration;
  if (a.verbose) print_layers(report);

  if (!a.out.empty()) {
    write_qdq_onnx(m, a.out);
    // Read it back the way any consumer will: a file we cannot re-import is not written silently.
    const Graph back = quant::load_qdq_onnx(a.out, float_precision);
    int pairs = 0;
    for (const Node& n : back.nodes) pairs += n.op == "QuantizeLinear";
    std::printf("wrote %s: %d quantized activations, %d int8 convs (re-import checked: %zu layers)\n", a.out.c_str(),
                pairs, report.int8, back.nodes.size());
  }

  if (!a.val.empty()) {
    const eval::Dataset ds = load_val_dataset(a.val);
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
      j["policy"] = a.int8.int8_auto ? "auto" : (a.int8.no_default_policy ? "int8-everywhere" : "default");
      j["convs"] = {{"int8", report.int8}, {"fp16", report.fp16}, {"fp32", report.fp32}};
      if (report.auto_error >= 0) j["auto_error"] = report.auto_error;
      if (report.auto_agreement >= 0) j["auto_agreement"] = report.auto_agreement;
      j["map50_95"] = r.stats.stats[0];
      j["map50"] = r.stats.stats[1];
      write_json(a.json, j.dump(2));
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
  add_int8_options(app, a->int8);
  app->add_option("-o,--output", a->out, "Write the Q/DQ ONNX model here (e.g. model.qdq.onnx)");
  app->add_option("--float-precision", a->float_precision, "Precision of the layers that are not int8: fp16 or fp32")
      ->check(CLI::IsMember({"fp16", "fp32"}))
      ->capture_default_str();
  app->add_option("--imgsz", a->imgsz, "Input size for models with dynamic spatial dims")->check(CLI::Range(32, 8192));
  app->add_option("--val", a->val, "Also validate the INT8 simulation on this dataset (COCO mAP)");
  app->add_option("--json", a->json, "With --val: write the figures as JSON");
  app->add_flag("-v,--verbose", a->verbose, "Print every conv with its precision, input scale and reason");
  return {app, [a] { return run_quantize(*a); }};
}

}  // namespace kestrel::cli
