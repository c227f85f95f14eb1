// kestrel bench MODEL|ENGINE: trtexec-class latency and throughput measurement.
#include <cstdio>

#include "bench_runner.h"
#include "cli_checks.h"
#include "command.h"
#include "int8_args.h"
#include "model_arg.h"
#ifdef KESTREL_HAS_CUDA
#include "cuda_cli.h"
#endif

namespace kestrel::cli {

namespace {
struct BenchArgs {
  std::string model, backend = "auto", precision = "fp32", json;
  Int8Args int8;
  int64_t batch = 0, imgsz = 0;
  BenchOptions o;
};

std::string resolve_backend(const std::string& b) {
  if (b != "auto") return b;
#ifdef KESTREL_HAS_CUDA
  if (gpu_available()) return "cuda";
#endif
  return "cpu";
}

int run_bench(BenchArgs a) {
  // Fail on an unwritable --json before spending minutes measuring.
  check_int8_options_used(a.int8, a.precision == "int8");
  check_output(a.json, "--json", {{a.model, "the model"}, {a.int8.cache, "the calibration cache"}});
  const std::string backend = resolve_backend(a.backend);
  BenchResult r;
  if (backend == "cpu") {
    if (a.precision != "fp32") throw UsageError("the cpu backend runs fp32 only");
    if (a.o.cuda_graph || a.o.streams != 1) throw UsageError("--cuda-graph and --streams need --backend cuda");
    Graph g = load_graph(a.model, a.batch, a.imgsz);
    check_imgsz_applied(a.imgsz, g.value(g.inputs.at(0)).shape, a.model);
    std::printf("bench %s on the CPU backend, batch %lld\n", a.model.c_str(), static_cast<long long>(g.batch()));
    r = bench_cpu(g, a.o);
  } else {
#ifdef KESTREL_HAS_CUDA
    auto engine = cuda_engine_for(a.model, a.precision, a.batch, a.imgsz, &a.int8);
    check_imgsz_applied(a.imgsz, engine->info().inputs.at(0).shape, a.model);
    std::printf("bench %s on %s, %s, batch %lld\n", a.model.c_str(), engine->info().gpu_name.c_str(),
                precision_name(engine->info().precision), static_cast<long long>(engine->info().batch));
    r = bench_cuda(*engine, a.o);
    if (!Runtime::is_engine_file(a.model)) r.flops_per_inference = graph_flops(load_graph(a.model, a.batch, a.imgsz));
#else
    throw UsageError("--backend cuda is not available in this build (no CUDA compiler at configure time)");
#endif
  }
  r.model = a.model;
  print_report(r);
  if (!a.json.empty()) {
    write_json(a.json, to_json(r).dump(2));
    std::printf("JSON written to %s\n", a.json.c_str());
  }
  return 0;
}
}  // namespace

Command add_bench(CLI::App& root) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* app = root.add_subcommand("bench", "Measure latency and throughput (trtexec's definitions)");
  app->add_option("model", a->model, "ONNX file, built-in model name or engine file")->required();
  app->add_option("--backend", a->backend, "auto (cuda when a GPU is present), cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app->add_flag("--fp16{fp16}", a->precision, "FP16 engine");
  app->add_flag("--int8{int8}", a->precision, "INT8 engine, calibrated with --calib or from a Q/DQ model");
  add_int8_options(app, a->int8);
  app->add_option("--batch", a->batch, "Batch size")->check(CLI::Range(1, 4096));
  app->add_option("--imgsz", a->imgsz, "Input size for models with dynamic spatial dims")->check(CLI::Range(32, 8192));
  app->add_option("--warmup", a->o.warmup_ms, "Warm-up time in ms")->check(finite_range(0.0, 600000.0))->capture_default_str();
  app->add_option("--iterations", a->o.iterations, "At least this many inferences")->check(CLI::Range(1, 100000000))->capture_default_str();
  app->add_option("--duration", a->o.duration_s, "And at least this many seconds")->check(finite_range(0.0, 86400.0))->capture_default_str();
  app->add_flag("--cuda-graph", a->o.cuda_graph, "Capture the enqueue into a CUDA graph and replay it");
  app->add_option("--streams", a->o.streams, "Concurrent streams, one execution context each")->check(CLI::Range(1, 64));
  app->add_flag("--no-data-transfers", [a](int64_t) { a->o.data_transfers = false; }, "Leave out H2D and D2H copies");
  app->add_flag("--spin-wait", a->o.spin_wait, "Busy-wait on events instead of blocking");
  app->add_flag("--dump-profile", a->o.profile, "Per-layer profile in a separate run");
  app->add_option("--json", a->json, "Write every figure as JSON");
  return {app, [a] { return run_bench(*a); }};
}

}  // namespace kestrel::cli
