// kestrel build MODEL -o FILE.engine: builds a CUDA engine for this GPU (fusion, channels-last
// lowering, per-layer kernel timing with a timing cache, arena planning) and writes it. --int8
// calibrates the model first (or reads a Q/DQ ONNX with its own scales).
#include <cstdio>

#include "batch_profile_args.h"
#include "cli_checks.h"
#include "command.h"
#include "int8_args.h"
#include "kestrel/batch_profile.h"
#include "kestrel/builder.h"
#include "model_arg.h"
#include "tactic_sources_arg.h"
#include "util/file_io.h"
#include "util/paths.h"

namespace kestrel::cli {

namespace {
struct BuildArgs {
  std::string model, output, timing_cache, precision_constraints = "prefer", tactic_sources;
  bool fp16 = false, int8 = false, tf32 = false, no_optimize = false, verbose = false;
  Int8Args calib;
  BatchProfileArgs profile;
  int64_t batch = 0, imgsz = 0;
  int64_t workspace_mib = BuilderConfig{}.workspace_limit >> 20;  // the library's default, in MiB
  int max_aux_streams = BuilderConfig{}.max_aux_streams;
};

int run_build(BuildArgs& a) {
  // Before minutes of tuning: the engine file must be writable and must not replace an input.
  check_output(a.output, "-o", {{a.model, "the model"}, {a.timing_cache, "the timing cache"}, {a.calib.cache, "the calibration cache"}});
  if (util::same_path(a.output, a.timing_cache)) throw UsageError("-o and --timing-cache name the same file");
  check_int8_options_used(a.calib, a.int8);
  if (!a.int8 && a.precision_constraints == "obey") throw UsageError("--precision-constraints applies to --int8 builds only");
  BuilderConfig cfg;
  // --int8 runs what has no INT8 kernel (or stays FP16 by policy) in FP16, as TensorRT's --int8 --fp16.
  cfg.precision = a.int8 ? Precision::INT8 : a.fp16 ? Precision::FP16 : Precision::FP32;
  cfg.tf32 = a.tf32;
  cfg.batch = a.batch;
  cfg.imgsz = a.imgsz;
  cfg.workspace_limit = a.workspace_mib << 20;
  cfg.timing_cache_path = a.timing_cache;
  cfg.optimize = !a.no_optimize;
  cfg.max_aux_streams = a.max_aux_streams;
  cfg.verbose = a.verbose;
  cfg.obey_precision_constraints = a.precision_constraints == "obey";
  apply_tactic_sources(a.tactic_sources, cfg);
  Graph g = a.int8 ? int8_model(a.model, a.batch, a.imgsz, a.calib).qdq : load_graph(a.model, a.batch, a.imgsz);
  check_imgsz_applied(a.imgsz, g.value(g.inputs.at(0)).shape, a.model);
  resolve_batch_profile(a.profile, g.inputs.at(0), g.value(g.inputs.at(0)).shape);
  check_batch_profile(a.batch, a.profile.min_batch, a.profile.opt_batch, a.profile.max_batch);
  cfg.min_batch = a.profile.min_batch, cfg.opt_batch = a.profile.opt_batch, cfg.max_batch = a.profile.max_batch;
  std::string hash;
  try {
    const std::vector<char> bytes = util::read_file(a.model);
    hash = hash_bytes(bytes.data(), bytes.size());
  } catch (const Error&) {
    hash = hash_bytes(a.model.data(), a.model.size());  // a zoo name
  }
  Builder builder;
  auto engine = builder.build(g, cfg, hash, a.model);
  engine->save(a.output);
  const EngineInfo& e = engine->info();
  const BuildReport& r = builder.report();
  if (!r.optimize_summary.empty()) std::printf("%s\n", r.optimize_summary.c_str());
  for (auto& n : r.notes) std::printf("note: %s\n", n.c_str());
  std::string batch = std::to_string(e.batch);
  if (e.plans.size() > 1) {
    batch = std::to_string(e.min_batch) + " to " + std::to_string(e.max_batch) + " (opt " + std::to_string(e.opt_batch) +
            "; plans for";
    for (const auto& p : e.plans) batch += " " + std::to_string(p.batch);
    batch += ")";
  }
  std::printf("built %s: %zu layers, %s, batch %s, for %s (sm %d.%d)\n", a.output.c_str(), e.layers.size(),
              precision_name(e.precision), batch.c_str(), e.gpu_name.c_str(), e.cc_major, e.cc_minor);
  std::printf("tactics: %d layers timed, %d from the timing cache, %d candidates rejected by validation\n", r.layers_tuned,
              r.layers_from_cache, r.tactics_rejected);
  std::printf("memory: arena %.2f MiB peak vs %.2f MiB sum of activations; weights %.2f MiB; %lld copies eliminated\n",
              e.arena_bytes / 1048576.0, e.activation_bytes / 1048576.0, e.weight_bytes / 1048576.0,
              static_cast<long long>(e.eliminated_copies));
  std::printf("build time: %.2f s (optimize %.2f s, tuning %.2f s)\n", r.total_s, r.optimize_s, r.tune_s);
  return 0;
}
}  // namespace

Command add_build(CLI::App& root) {
  auto args = std::make_shared<BuildArgs>();
  CLI::App* app = root.add_subcommand("build", "Build a CUDA engine file for this GPU");
  app->add_option("model", args->model, "ONNX file or built-in model name")->required();
  app->add_option("--output,-o", args->output, "Engine file to write")->required();
  app->add_flag("--fp16", args->fp16, "FP16 storage with FP32 accumulation (default: FP32)");
  app->add_flag("--int8", args->int8,
                "INT8 convolutions (FP16 elsewhere): calibrates with --calib, or reads a Q/DQ ONNX's own scales");
  add_int8_options(app, args->calib);
  app->add_flag("--tf32", args->tf32, "Allow TF32 tensor cores for FP32 convolutions and matmuls");
  app->add_option("--batch", args->batch, "Batch size to bind")->check(CLI::Range(1, 4096));
  add_batch_profile_options(app, args->profile);
  app->add_option("--imgsz", args->imgsz, "Input size for models with dynamic spatial dims")->check(CLI::Range(32, 8192));
  app->add_option("--timing-cache", args->timing_cache, "Timing cache file (read, then updated)");
  app->add_option("--precision-constraints", args->precision_constraints,
                  "INT8: obey = every INT8 layer exactly as quantized; prefer (default) = a layer may run above "
                  "INT8 where that is faster, e.g. a conv in FP16 where timed faster (as trtexec's --precisionConstraints)")
      ->check(CLI::IsMember({"prefer", "obey"}));
  app->add_option("--tacticSources", args->tactic_sources,
                  "Tactic libraries on or off, trtexec's form: e.g. -CUDNN or -CUDNN,-CUBLAS_LT (sources: CUDNN, "
                  "CUBLAS_LT; the project's own kernels always take part)");
  app->add_option("--workspace", args->workspace_mib, "Scratch limit per layer, MiB")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  app->add_option("--maxAuxStreams", args->max_aux_streams,
                  "Streams besides the main one that independent branches (the detection head's) may run on, "
                  "trtexec's form; 0 runs every layer in order")
      ->check(CLI::Range(0, 63))
      ->capture_default_str();
  app->add_flag("--no-optimize", args->no_optimize, "Skip the fusion passes (run the graph op by op)");
  app->add_flag("--verbose,-v", args->verbose, "Print every tactic's time per layer");
  return {app, [args] { return run_build(*args); }};
}

}  // namespace kestrel::cli
