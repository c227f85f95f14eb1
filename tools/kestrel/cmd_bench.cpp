// kestrel bench MODEL|ENGINE: trtexec-class latency and throughput measurement.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "bench_runner.h"
#include "cli_checks.h"
#include "kestrel/inference.h"
#include "kestrel/pipeline.h"
#include "command.h"
#include "engine_arg.h"
#include "int8_args.h"
#include "model_arg.h"
#ifdef KESTREL_HAS_CUDA
#include "cuda_cli.h"
#include "kestrel/cuda_inference.h"
#endif

namespace kestrel::cli {

namespace {
struct BenchArgs {
  std::string model, backend = "auto", precision = "fp32", json;
  Int8Args int8;
  int64_t batch = 0, imgsz = 0;
  BenchOptions o;
  std::string images;  // --images: also time the whole path from these files to boxes
  int workers = 0;     // --workers: its decoding threads
  bool workers_set = false;
};

// Files to boxes on the same engine, after the network-only measurement.
nlohmann::json end_to_end(InferenceEngine& engine, const std::string& images, int workers) {
  const std::vector<std::string> files = pipeline::expand_sources({images});
  std::printf("\nend to end: %zu images from %s (decode, letterbox, network, decode + NMS), 3 passes\n", files.size(),
              images.c_str());
  std::fflush(stdout);
  pipeline::EndToEndOptions options;
  options.decode_threads = workers;
  const pipeline::EndToEndResult e = pipeline::measure_end_to_end(engine, files, options);
  std::printf("Speed: %.2fms decode, %.3fms preprocess, %.3fms inference, %.3fms postprocess per image; "
              "%lld images (%lld skipped) in %.2f s: %.1f images/s\n",
              e.speed.decode_ms, e.speed.preprocess_ms, e.speed.inference_ms, e.speed.postprocess_ms,
              static_cast<long long>(e.images), static_cast<long long>(e.skipped), e.seconds, e.images_per_s);
  print_host_times(e.host, e.seconds);
  if (e.device_preprocess_ms > 0)
    std::printf("GPU kernels alone: %.4fms letterbox, %.4fms decode + NMS per image (the copies to and from the host "
                "are in preprocess and postprocess above)\n",
                e.device_preprocess_ms, e.device_postprocess_ms);
  if (e.latency_ms > 0)
    std::printf("Latency: %.3f ms from one decoded image in host memory to its boxes in host memory (median of 200)\n",
                e.latency_ms);
  return {{"images", e.images}, {"skipped", e.skipped}, {"seconds", e.seconds}, {"images_per_s", e.images_per_s},
          {"decode_ms", e.speed.decode_ms}, {"preprocess_ms", e.speed.preprocess_ms},
          {"inference_ms", e.speed.inference_ms}, {"postprocess_ms", e.speed.postprocess_ms},
          {"device_preprocess_ms", e.device_preprocess_ms}, {"device_postprocess_ms", e.device_postprocess_ms},
          {"detections", e.detections}, {"latency_ms", e.latency_ms}, {"host", to_json(e.host)}};
}

int run_bench(BenchArgs a) {
  // Fail on an unwritable --json before spending minutes measuring.
  check_int8_options_used(a.int8, a.precision == "int8");
  if (a.workers_set && a.images.empty()) throw UsageError("--workers decodes the files of --images: give --images too");
  check_output(a.json, "--json", {{a.model, "the model"}, {a.int8.cache, "the calibration cache"}});
  const EngineSpec spec{a.model, a.backend, a.precision, a.batch, a.imgsz, &a.int8};
  const Backend backend = resolve_backend(spec);
  BenchResult r;
  nlohmann::json e2e;
  if (backend == Backend::Cpu) {
    if (a.precision != "fp32") throw UsageError("bench on the cpu backend runs fp32 only (asked for " + a.precision + ")");
    if (a.o.cuda_graph || a.o.streams != 1) throw UsageError("--cuda-graph and --streams need --backend cuda");
    Graph g = load_graph(a.model, a.batch, a.imgsz);
    check_imgsz_applied(a.imgsz, g.value(g.inputs.at(0)).shape, a.model);
    std::printf("bench %s on the CPU backend, batch %lld\n", a.model.c_str(), static_cast<long long>(g.batch()));
    r = bench_cpu(g, a.o);
    r.model = a.model;
    print_report(r);
    if (!a.images.empty()) {
      auto engine = make_cpu_engine(std::move(g));
      e2e = end_to_end(*engine, a.images, a.workers);
    }
  } else {
#ifdef KESTREL_HAS_CUDA
    auto engine = cuda_engine_for(spec);
    check_imgsz_applied(a.imgsz, engine->info().inputs.at(0).shape, a.model);
    a.o.batch = a.batch;
    std::printf("bench %s on %s, %s, batch %lld\n", a.model.c_str(), engine->info().gpu_name.c_str(),
                precision_name(engine->info().precision), static_cast<long long>(a.batch ? a.batch : engine->info().batch));
    r = bench_cuda(*engine, a.o);
    if (!is_engine_file(a.model)) r.flops_per_inference = graph_flops(load_graph(a.model, a.batch, a.imgsz));
    r.model = a.model;
    print_report(r);
    if (!a.images.empty()) {
      auto inference = make_cuda_inference(std::move(engine), a.batch, runtime_config());
      e2e = end_to_end(*inference, a.images, a.workers);
    }
#else
    fail("internal: the CUDA backend was chosen in a build without it");  // resolve_backend refuses it
#endif
  }
  if (!a.json.empty()) {
    nlohmann::json j = to_json(r);
    if (!e2e.is_null()) j["end_to_end"] = e2e;
    write_json(a.json, j.dump(2));
    std::printf("JSON written to %s\n", a.json.c_str());
  }
  return 0;
}
}  // namespace

Command add_bench(CLI::App& root) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* app = root.add_subcommand("bench", "Measure latency and throughput (trtexec's definitions)");
  app->add_option("model", a->model, "ONNX file, built-in model name or engine file")->required();
  add_backend_option(app, a->backend);
  add_precision_flags(app, a->precision);
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
  app->add_option("--images", a->images,
                  "Also time the whole path from these image files (folder, file or glob) to boxes: decode, letterbox, "
                  "network, decode + NMS");
  add_workers_option(app, a->workers)->each([a](const std::string&) { a->workers_set = true; });
  return {app, [a] { return run_bench(*a); }};
}

}  // namespace kestrel::cli
