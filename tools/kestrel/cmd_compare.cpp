// kestrel compare MODEL [--data PATH]: every precision and batch size in one table — engine size, mAP,
// latency, throughput — with verdicts (accuracy vs FP32, determinism, p95 budget), JSON and a chart.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "bench_runner.h"
#include "command.h"
#include "compare_chart.h"
#include "engine_arg.h"
#include "kestrel/image.h"
#include "kestrel/pipeline.h"
#include "model_arg.h"
#ifdef KESTREL_HAS_CUDA
#include "cuda_cli.h"
#include "kestrel/runtime.h"
#endif

namespace kestrel::cli {

namespace {
struct CompareArgs {
  std::string model, data, calib, backend = "auto", json, chart;
  std::vector<std::string> precisions{"fp32", "fp16"};
  std::vector<int64_t> batches{1, 32};
  double budget_ms = 0;
  int64_t imgsz = 0;
  BenchOptions o;
};

struct Row {
  std::string precision;
  int64_t batch = 1;
  double engine_mb = -1;  // < 0: not an engine (CPU)
  double map = -1, map50 = -1;
  Summary compute;
  double images_per_s = 0;
  bool deterministic = true;
};

// Maximum allowed mAP drop (in points) against FP32 for each precision.
double allowed_drop(const std::string& precision) { return precision == "fp16" ? 0.5 : precision == "int8" ? 1.0 : 0.0; }

std::string verdict(bool ok) { return ok ? "PASS" : "FAIL"; }

// Runs one batch twice and compares the raw outputs bit for bit: identical outputs give identical boxes.
bool deterministic(InferenceEngine& e) {
  HostTensor x(DType::F32, e.input_shape());
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>((i * 7919) % 1000) / 1000.f;
  HostTensor a = e.infer(x), b = e.infer(x);
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

pipeline::ValResult validate_on(InferenceEngine& e, const eval::Dataset& ds) {
  pipeline::ValOptions vo;
  return pipeline::validate(e, ds, vo);
}

int run_compare(CompareArgs a) {
  for (auto& p : a.precisions) {
    if (p == "int8")
      throw UsageError("int8 is not available yet: INT8 engines (calibration with --calib) come with the INT8 engine work; "
                       "compare fp32 and fp16 for now");
    if (p != "fp32" && p != "fp16") throw UsageError("unknown precision '" + p + "' (fp32, fp16)");
  }
  if (!a.json.empty() && !std::ofstream(a.json, std::ios::app)) fail("cannot write ", a.json);
  std::string backend = a.backend;
#ifdef KESTREL_HAS_CUDA
  if (backend == "auto") backend = gpu_available() ? "cuda" : "cpu";
#else
  if (backend == "auto") backend = "cpu";
  if (backend == "cuda") throw UsageError("--backend cuda is not available in this build");
#endif
  if (backend == "cpu") a.precisions = {"fp32"};  // the reference backend has one precision

  // The model must be a detector before anything is built or timed.
  {
    Graph g = load_graph(a.model, 1, a.imgsz);
    yolo::detect_head(g.value(g.outputs.at(0)).shape);
  }
  std::optional<eval::Dataset> ds;
  if (!a.data.empty()) {
    eval::LoadOptions lo;
    lo.size_probe = [](const std::string& p) {
      const image::ImageSize s = image::probe_size(p);
      return std::pair<int, int>{s.width, s.height};
    };
    ds = eval::load_dataset(a.data, lo);
  }
  std::vector<Row> rows;
  std::string device = "CPU";
  for (const auto& precision : a.precisions) {
    double map = -1, map50 = -1;
    bool det = true;
    for (size_t bi = 0; bi < a.batches.size(); ++bi) {
      const int64_t batch = a.batches[bi];
      Row row;
      row.precision = precision;
      row.batch = batch;
      std::printf("== %s %s batch %lld ==\n", backend.c_str(), precision.c_str(), static_cast<long long>(batch));
      std::fflush(stdout);
      BenchResult br;
      if (backend == "cpu") {
        Graph g = load_graph(a.model, batch, a.imgsz);
        BenchOptions o = a.o;
        br = bench_cpu(g, o);
        if (bi == 0) {
          auto e = make_cpu_engine(load_graph(a.model, batch, a.imgsz));
          det = deterministic(*e);
          if (ds) {
            auto v = validate_on(*e, *ds);
            map = v.stats.stats[0], map50 = v.stats.stats[1];
          }
        }
      } else {
#ifdef KESTREL_HAS_CUDA
        auto engine = cuda_engine_for(a.model, precision, batch, a.imgsz);
        device = engine->info().gpu_name;
        row.engine_mb = static_cast<double>(engine->serialize().size()) / (1024.0 * 1024.0);
        br = bench_cuda(*engine, a.o);
        if (bi == 0) {
          EngineSpec spec{a.model, "cuda", precision, batch, a.imgsz};
          auto e = open_cuda_engine(spec);
          det = deterministic(*e);
          if (ds) {
            auto v = validate_on(*e, *ds);
            map = v.stats.stats[0], map50 = v.stats.stats[1];
          }
        }
#endif
      }
      std::vector<double> compute;
      for (auto& it : br.iterations) compute.push_back(it.compute);
      row.compute = summarize(compute);
      row.images_per_s = br.throughput() * static_cast<double>(batch);
      row.map = map;
      row.map50 = map50;
      row.deterministic = det;
      rows.push_back(row);
    }
  }

  // The table.
  double fp32_map = -1;
  for (auto& r : rows)
    if (r.precision == "fp32" && r.map >= 0) fp32_map = r.map;
  std::printf("\n%s on %s (%s)%s\n", a.model.c_str(), device.c_str(), backend.c_str(),
              ds ? (", mAP on " + a.data).c_str() : ", no --data: accuracy not measured");
  std::printf("%-9s %5s %9s %8s %8s %8s %11s %11s %10s  %-8s %-8s %-8s\n", "precision", "batch", "size MB", "mAP",
              "mAP50", "dFP32", "median ms", "p95 ms", "images/s", "accuracy", "determ.", "budget");
  nlohmann::json j;
  j["model"] = a.model;
  j["device"] = device;
  j["backend"] = backend;
  j["data"] = a.data;
  std::vector<ChartPoint> points;
  bool all_pass = true;
  for (auto& r : rows) {
    const double delta = (r.map >= 0 && fp32_map >= 0) ? (r.map - fp32_map) * 100 : NAN;
    std::string acc = "n/a";
    if (!std::isnan(delta) && r.precision != "fp32") acc = verdict(-delta <= allowed_drop(r.precision));
    std::string budget = a.budget_ms > 0 ? verdict(r.compute.p95 <= a.budget_ms) : "n/a";
    all_pass = all_pass && acc != "FAIL" && budget != "FAIL" && r.deterministic;
    auto num = [](double v, const char* f) { return v >= 0 ? [&] { char b[32]; std::snprintf(b, 32, f, v); return std::string(b); }() : std::string("n/a"); };
    std::printf("%-9s %5lld %9s %8s %8s %8s %11.3f %11.3f %10.1f  %-8s %-8s %-8s\n", r.precision.c_str(),
                static_cast<long long>(r.batch), num(r.engine_mb, "%.1f").c_str(), num(r.map, "%.4f").c_str(),
                num(r.map50, "%.4f").c_str(), std::isnan(delta) ? "n/a" : num(std::fabs(delta), delta < 0 ? "-%.2f" : "+%.2f").c_str(),
                r.compute.median, r.compute.p95, r.images_per_s, acc.c_str(), verdict(r.deterministic).c_str(), budget.c_str());
    nlohmann::json jr = {{"precision", r.precision}, {"batch", r.batch}, {"compute_ms", to_json(r.compute)},
                         {"images_per_s", r.images_per_s}, {"deterministic", r.deterministic},
                         {"accuracy_verdict", acc}, {"budget_verdict", budget}};
    jr["engine_mb"] = r.engine_mb >= 0 ? nlohmann::json(r.engine_mb) : nlohmann::json(nullptr);
    jr["map50_95"] = r.map >= 0 ? nlohmann::json(r.map) : nlohmann::json(nullptr);
    jr["map50"] = r.map50 >= 0 ? nlohmann::json(r.map50) : nlohmann::json(nullptr);
    jr["delta_fp32_points"] = std::isnan(delta) ? nlohmann::json(nullptr) : nlohmann::json(delta);
    j["rows"].push_back(jr);
    points.push_back({r.precision + " b" + std::to_string(r.batch), r.compute.median, r.map});
  }
  std::printf("Checks: FP16 within %.1f mAP points of FP32 (INT8 within %.1f), same input twice gives identical output, "
              "p95 GPU compute within --budget-ms. Latency = %s compute per batch.\n",
              allowed_drop("fp16"), allowed_drop("int8"), backend == "cuda" ? "GPU" : "CPU");
  j["all_checks_pass"] = all_pass;
  if (!a.json.empty()) {
    std::ofstream f(a.json, std::ios::trunc);
    if (!(f << j.dump(2) << "\n")) fail("cannot write ", a.json);
    std::printf("JSON written to %s\n", a.json.c_str());
  }
  const std::string chart = a.chart.empty() ? "" : a.chart;
  if (!chart.empty()) {
    std::ofstream f(chart, std::ios::trunc);
    if (!(f << latency_map_svg(a.model + " on " + device, points))) fail("cannot write ", chart);
    std::printf("chart written to %s\n", chart.c_str());
  }
  return all_pass ? 0 : kExitFailure;
}
}  // namespace

Command add_compare(CLI::App& root) {
  auto a = std::make_shared<CompareArgs>();
  a->o.iterations = 20;
  a->o.duration_s = 1;
  a->o.cuda_graph = true;  // engines are deployed with CUDA graphs; --no-cuda-graph measures plain enqueues
  CLI::App* app = root.add_subcommand("compare", "Every precision in one table: size, mAP, latency, with verdicts");
  app->add_option("model", a->model, "ONNX file or built-in model name")->required();
  app->add_option("--data", a->data, "Labelled dataset for mAP (COCO or YOLO layout); without it accuracy is not measured");
  app->add_option("--calib", a->calib, "Calibration images (for int8)");
  app->add_option("--precisions", a->precisions, "Comma-separated: fp32,fp16")->delimiter(',')->capture_default_str();
  app->add_option("--batch", a->batches, "Comma-separated batch sizes")->delimiter(',')->check(CLI::Range(1, 4096))->capture_default_str();
  app->add_option("--budget-ms", a->budget_ms, "p95 latency budget per batch, ms")->check(CLI::Range(0.0, 1e9));
  app->add_option("--backend", a->backend, "auto (cuda when a GPU is present), cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app->add_option("--imgsz", a->imgsz, "Input size for models with dynamic spatial dims")->check(CLI::Range(32, 8192));
  app->add_option("--iterations", a->o.iterations, "Timed inferences per row (at least)")->check(CLI::Range(1, 1000000));
  app->add_option("--duration", a->o.duration_s, "Seconds per row (at least)")->check(CLI::Range(0.0, 3600.0));
  app->add_flag("--no-cuda-graph", [a](int64_t) { a->o.cuda_graph = false; }, "Time plain enqueues instead of CUDA-graph replays");
  app->add_option("--json", a->json, "Write the table as JSON");
  app->add_option("--chart", a->chart, "Write a latency-vs-mAP chart (SVG)");
  return {app, [a] { return run_compare(*a); }};
}

}  // namespace kestrel::cli
