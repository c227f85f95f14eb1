// kestrel compare MODEL [--data PATH]: every precision and batch size in one table — engine size, mAP,
// latency, throughput — with verdicts (accuracy vs FP32, determinism, p95 budget), JSON and a chart.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "bench_runner.h"
#include "cli_checks.h"
#include "command.h"
#include "dataset_arg.h"
#include "compare_chart.h"
#include "engine_arg.h"
#include "int8_args.h"
#include "kestrel/agreement.h"
#include "kestrel/pipeline.h"
#include "model_arg.h"
#include "util/file_io.h"
#include "util/paths.h"
#ifdef KESTREL_HAS_CUDA
#include "cuda_cli.h"
#include "kestrel/runtime.h"
#endif

namespace kestrel::cli {

namespace {
struct CompareArgs {
  std::string model, data, backend = "auto", json, chart;
  std::string agree;  // unlabelled images: agreement with FP32
  std::string int8_model;  // a Q/DQ ONNX of the model: the int8 rows run it instead of a calibration here
  Int8Args int8;
  std::vector<std::string> precisions{"fp32", "fp16"};
  std::vector<int64_t> batches{1, 32};
  double budget_ms = 0;
  bool precisions_set = false;
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
  double agreement = -1;       // with FP32's detections on the --agree images; < 0: not measured
  eval::Interval agreement_ci;
  eval::Interval delta_ci;     // of the mAP difference to FP32, in points
};

// What one precision's engine produced, kept for the comparisons with FP32 after every row is run.
struct Measured {
  std::vector<eval::Detection> val;         // --data, conf 0.001
  std::vector<eval::Detection> agree;       // --agree images, conf 0.001
  std::vector<eval::Detection> agree_ref;   // --agree images, conf 0.25 (FP32 only: the reference)
};

// Maximum allowed mAP drop (in points) against FP32 for each precision.
double allowed_drop(const std::string& precision) { return precision == "fp16" ? 0.5 : precision == "int8" ? 1.0 : 0.0; }

std::string verdict(bool ok) { return ok ? "PASS" : "FAIL"; }

// Minimum agreement with FP32's detections on the --agree images for each precision: FP16 engines
// reach ~0.998 (bench/RESULTS.md), the INT8 target of the default policy is 0.97.
double min_agreement(const std::string& precision) { return precision == "fp16" ? 0.99 : precision == "int8" ? 0.97 : 0.0; }

// The intervals: percentile bootstrap over images, fixed seed (eval::BootstrapOptions' defaults).
const eval::BootstrapOptions kBootstrap{};

// Runs one batch twice and compares the raw outputs bit for bit: identical outputs give identical boxes.
bool deterministic(InferenceEngine& e) {
  HostTensor x(DType::F32, e.input_shape());
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>((i * 7919) % 1000) / 1000.f;
  HostTensor a = e.infer(x), b = e.infer(x);
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// Latency of an engine without a GPU timer (the CPU INT8 simulation): wall time per infer.
Summary time_infer(InferenceEngine& e, const BenchOptions& o) {
  HostTensor x(DType::F32, e.input_shape());
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>((i * 7919) % 1000) / 1000.f;
  std::vector<double> ms;
  const auto start = std::chrono::steady_clock::now();
  while (static_cast<int64_t>(ms.size()) < o.iterations ||
         std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < o.duration_s) {
    const auto t0 = std::chrono::steady_clock::now();
    e.infer(x);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return summarize(ms);
}

// The INT8 model is quantized once (calibration is the slow part) and written as a Q/DQ ONNX, from
// which every batch size's engine is built with the same scales; removed when compare ends.
struct QdqFile {
  std::string path;
  QdqFile() = default;
  QdqFile(const QdqFile&) = delete;
  QdqFile& operator=(const QdqFile&) = delete;
  ~QdqFile() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove(path, ec);
  }
};

pipeline::ValResult validate_on(InferenceEngine& e, const eval::Dataset& ds) {
  pipeline::ValOptions vo;
  return pipeline::validate(e, ds, vo);
}

// The accuracy side of one precision's row: mAP on --data, detections on the --agree images.
void measure_accuracy(InferenceEngine& e, const std::string& precision, const std::optional<eval::Dataset>& ds,
                      const std::optional<eval::Dataset>& agree, double& map, double& map50, Measured& m) {
  if (ds) {
    auto v = validate_on(e, *ds);
    map = v.stats.stats[0], map50 = v.stats.stats[1];
    m.val = std::move(v.detections);
  }
  if (agree) {
    std::printf("agreement images: %s, conf %g\n", precision.c_str(), eval::kAgreementCandidateConf);
    m.agree = eval::engine_detections(e, *agree, eval::kAgreementCandidateConf);
    if (precision == "fp32") {
      std::printf("agreement images: fp32 reference, conf %g\n", eval::kAgreementReferenceConf);
      m.agree_ref = eval::engine_detections(e, *agree, eval::kAgreementReferenceConf);
    }
  }
}

// What identifies a model's Q/DQ form: its input and output shapes, and its convolutions' weight shapes.
struct ModelForm {
  std::string io;                    // "N convs, input [..], output [..]"
  std::vector<std::string> weights;  // every conv's weight shape, sorted
};

ModelForm model_form(const Graph& g) {
  ModelForm f;
  for (const Node& n : g.nodes)
    if (n.op == "Conv" && n.inputs.size() > 1) f.weights.push_back(shape_str(g.value(n.inputs[1]).shape));
  std::sort(f.weights.begin(), f.weights.end());
  f.io = std::to_string(f.weights.size()) + " convs, input";
  for (const auto& v : g.inputs) f.io += " " + shape_str(g.value(v).shape);
  f.io += ", output";
  for (const auto& v : g.outputs) f.io += " " + shape_str(g.value(v).shape);
  return f;
}

// --int8-model: a Q/DQ form of the positional FP32 model (what `kestrel quantize -o` writes, e.g. after a
// slow --int8-auto), so that every precision is compared on the same images without quantizing again.
// Checked before anything is built: it must be used, quantized, a form of this model (a Q/DQ file of
// another model, size or input size would otherwise be compared as if it were this one's), and not
// combined with options that would calibrate or place layers (the file's own scales and precisions are
// used). `model`: the positional model at batch 1; `model_is_qdq`: it has Q/DQ nodes.
void check_int8_model_arg(const CompareArgs& a, const Graph& model, bool int8, bool model_is_qdq) {
  if (!int8) throw UsageError("--int8-model only applies to INT8: add int8 to --precisions");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(a.int8_model, ec))
    throw UsageError("--int8-model file '" + a.int8_model + "' does not exist");
  if (!is_qdq_model(a.int8_model))
    throw UsageError(a.int8_model + " is not a Q/DQ model (no QuantizeLinear nodes): --int8-model takes what "
                     "`kestrel quantize -o` writes");
  if (model_is_qdq)
    throw UsageError(a.model + " is quantized already: pass the FP32 model, and its Q/DQ form as --int8-model");
  if (const std::string given = int8_options_given(a.int8); !given.empty())
    throw UsageError(given + " cannot be combined with --int8-model: its own scales and precisions are used");
  const ModelForm q = model_form(load_graph(a.int8_model, 1, a.imgsz));
  const ModelForm fp32 = model_form(model);
  if (q.io != fp32.io || q.weights != fp32.weights)
    throw UsageError("--int8-model " + a.int8_model + " is not a form of " + a.model + ": " + q.io + " against " +
                     fp32.io + (q.io == fp32.io ? " (other weight shapes)" : ""));
}

int run_compare(CompareArgs a) {
  bool int8 = false;
  for (auto& p : a.precisions) {
    if (p != "fp32" && p != "fp16" && p != "int8") throw UsageError("unknown precision '" + p + "' (fp32, fp16, int8)");
    int8 = int8 || p == "int8";
  }
  check_int8_options_used(a.int8, int8, "int8 to --precisions");
  if (!a.agree.empty() && std::find(a.precisions.begin(), a.precisions.end(), "fp32") == a.precisions.end())
    throw UsageError("--agree compares with FP32's detections: include fp32 in --precisions");
  if (is_engine_file(a.model))
    throw UsageError(a.model + " is an engine file: compare builds every precision from the model, so pass the ONNX "
                     "model (or a built-in name) it was built from");
  const bool model_is_qdq = int8 && is_qdq_model(a.model);
  std::optional<eval::Dataset> agree;
  {
    // The model at batch 1, loaded once (and not held while the engines run): it must be a detector, and
    // the agreement images and --int8-model are checked against it before anything slow runs.
    const Graph g1 = load_graph(a.model, 1, a.imgsz);
    check_imgsz_applied(a.imgsz, g1.value(g1.inputs.at(0)).shape, a.model);
    const Shape out = g1.value(g1.outputs.at(0)).shape;
    const yolo::HeadKind head = yolo::detect_head(out);
    if (!a.agree.empty())
      agree = eval::unlabeled_images(a.agree, static_cast<int>(head == yolo::HeadKind::V5 ? out[2] - 5 : out[1] - 4));
    if (!a.int8_model.empty()) check_int8_model_arg(a, g1, int8, model_is_qdq);
  }
  const bool qdq_model = model_is_qdq || (int8 && !a.int8_model.empty());
  if (int8 && a.int8.calib.empty() && a.int8.cache.empty() && !qdq_model)
    throw UsageError("--precisions int8 needs calibration: --calib DIR, an existing --calib-cache, a Q/DQ model or "
                     "--int8-model");
  const std::vector<NamedInput> inputs = {
      {a.model, "the model"}, {a.int8.cache, "the calibration cache"}, {a.int8_model, "the --int8-model"}};
  check_output(a.json, "--json", inputs);
  check_output(a.chart, "--chart", inputs);
  if (!a.json.empty() && util::same_path(a.json, a.chart)) throw UsageError("--json and --chart name the same file");
  const std::string backend = backend_name(resolve_backend(EngineSpec{a.model, a.backend, "fp32", 0, a.imgsz}));
  if (backend == "cpu") {
    // The reference backend runs FP32, and INT8 as the exact simulation of the GPU's INT8 engine.
    std::vector<std::string> p;
    for (auto& x : a.precisions)
      if (x != "fp16") p.push_back(x);
    if (p.empty()) throw UsageError("nothing to compare: the cpu backend runs fp32, and int8 as a simulation, not fp16");
    if (p.size() != a.precisions.size() && a.precisions_set)  // asked for: say it is not measured
      std::fprintf(stderr, "kestrel: warning: fp16 left out: the cpu backend runs fp32, and int8 as a simulation\n");
    a.precisions = p;
  }
  QdqFile qdq;
  std::string int8_model_path = a.int8_model.empty() ? a.model : a.int8_model;
  if (int8 && !qdq_model) {
    std::printf("== int8 quantization ==\n");
    const Int8Model m = int8_model(a.model, 0, a.imgsz, a.int8);
    qdq.path = (std::filesystem::temp_directory_path() / ("kestrel-compare-" + std::to_string(getpid()) + ".qdq.onnx")).string();
    write_qdq_onnx(m, qdq.path);
    int8_model_path = qdq.path;
  }

  std::optional<eval::Dataset> ds;
  if (!a.data.empty()) {
    ds = load_val_dataset(a.data);
  }
  std::vector<Row> rows;
  std::map<std::string, Measured> measured;
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
      const std::string& model = precision == "int8" ? int8_model_path : a.model;
      if (backend == "cpu" && precision == "int8") {
        EngineSpec spec{model, "cpu", precision, batch, a.imgsz};
        auto e = open_engine(spec);
        row.compute = time_infer(*e, a.o);
        row.images_per_s = row.compute.median > 0 ? 1000.0 * static_cast<double>(batch) / row.compute.median : 0;
        if (bi == 0) {
          det = deterministic(*e);
          measure_accuracy(*e, precision, ds, agree, map, map50, measured[precision]);
        }
      } else if (backend == "cpu") {
        Graph g = load_graph(a.model, batch, a.imgsz);
        BenchOptions o = a.o;
        br = bench_cpu(g, o);
        if (bi == 0) {
          auto e = make_cpu_engine(load_graph(a.model, batch, a.imgsz));
          det = deterministic(*e);
          measure_accuracy(*e, precision, ds, agree, map, map50, measured[precision]);
        }
      } else {
#ifdef KESTREL_HAS_CUDA
        auto engine = cuda_engine_for(EngineSpec{model, "cuda", precision, batch, a.imgsz});
        device = engine->info().gpu_name;
        row.engine_mb = static_cast<double>(engine->serialize().size()) / (1024.0 * 1024.0);
        br = bench_cuda(*engine, a.o);
        if (bi == 0) {
          // The engine just timed, saved and reloaded: no second build (and no second tuning).
          const std::string tmp = (std::filesystem::temp_directory_path() /
                                   ("kestrel-compare-" + std::to_string(getpid()) + ".engine")).string();
          engine->save(tmp);
          EngineSpec spec{tmp, "cuda", precision, batch, a.imgsz};
          auto e = open_engine(spec);
          std::error_code ec;
          std::filesystem::remove(tmp, ec);
          det = deterministic(*e);
          measure_accuracy(*e, precision, ds, agree, map, map50, measured[precision]);
        }
#endif
      }
      if (!br.iterations.empty()) {
        std::vector<double> compute;
        for (auto& it : br.iterations) compute.push_back(it.compute);
        row.compute = summarize(compute);
        row.images_per_s = br.throughput() * static_cast<double>(batch);
      }
      row.map = map;
      row.map50 = map50;
      row.deterministic = det;
      rows.push_back(row);
    }
  }

  if (rows.empty()) fail("nothing was compared (no precision and batch size ran)");

  // Comparisons with FP32: agreement on the --agree images and the mAP difference, with intervals.
  const auto fp32 = measured.find("fp32");
  for (auto& [precision, m] : measured) {
    if (fp32 == measured.end()) break;
    Row cmp;
    if (agree) {
      std::printf("agreement with fp32: %s (%d bootstrap resamples)\n", precision.c_str(), kBootstrap.resamples);
      const eval::Agreement ag = eval::agreement(*agree, fp32->second.agree_ref, m.agree, kBootstrap);
      cmp.agreement = ag.value;
      cmp.agreement_ci = ag.ci;
    }
    if (ds && precision != "fp32") {
      const eval::MapDelta d = eval::map_delta(*ds, fp32->second.val, m.val, kBootstrap);
      cmp.delta_ci = {d.ci.lo * 100, d.ci.hi * 100};
    }
    for (auto& r : rows)
      if (r.precision == precision) {
        r.agreement = cmp.agreement;
        r.agreement_ci = cmp.agreement_ci;
        r.delta_ci = cmp.delta_ci;
      }
  }

  // The table.
  double fp32_map = -1;
  for (auto& r : rows)
    if (r.precision == "fp32" && r.map >= 0) fp32_map = r.map;
  std::printf("\n%s on %s (%s)%s\n", a.model.c_str(), device.c_str(), backend.c_str(),
              ds ? (", mAP on " + a.data).c_str() : ", no --data: accuracy not measured");
  if (agree) std::printf("agreement with FP32's detections on %zu images of %s\n", agree->images.size(), a.agree.c_str());
  std::printf("%-9s %5s %9s %8s %8s %8s %15s %8s %15s %11s %11s %10s  %-8s %-9s %-8s %-8s\n", "precision", "batch",
              "size MB", "mAP", "mAP50", "dFP32", "dFP32 95% CI", "agree", "agree 95% CI", "median ms", "p95 ms",
              "images/s", "accuracy", "agreement", "determ.", "budget");
  nlohmann::json j;
  j["model"] = a.model;
  j["device"] = device;
  j["backend"] = backend;
  j["data"] = a.data;
  j["agree"] = a.agree;
  j["bootstrap"] = {{"method", "percentile, images resampled with replacement"},
                    {"resamples", kBootstrap.resamples}, {"seed", kBootstrap.seed}, {"level", kBootstrap.level}};
  std::vector<ChartPoint> points;
  bool all_pass = true;
  for (auto& r : rows) {
    const double delta = (r.map >= 0 && fp32_map >= 0) ? (r.map - fp32_map) * 100 : NAN;
    std::string acc = "n/a";
    if (!std::isnan(delta) && r.precision != "fp32") acc = verdict(-delta <= allowed_drop(r.precision));
    std::string agreement = "n/a";
    if (r.agreement >= 0 && r.precision != "fp32") agreement = verdict(r.agreement >= min_agreement(r.precision));
    std::string budget = a.budget_ms > 0 ? verdict(r.compute.p95 <= a.budget_ms) : "n/a";
    all_pass = all_pass && acc != "FAIL" && agreement != "FAIL" && budget != "FAIL" && r.deterministic;
    auto num = [](double v, const char* f) { return v >= 0 ? [&] { char b[32]; std::snprintf(b, 32, f, v); return std::string(b); }() : std::string("n/a"); };
    auto interval = [](const eval::Interval& i, const char* f) {
      if (!i.valid()) return std::string("n/a");
      char b[64];
      std::snprintf(b, sizeof b, f, i.lo, i.hi);
      return std::string(b);
    };
    std::printf("%-9s %5lld %9s %8s %8s %8s %15s %8s %15s %11.3f %11.3f %10.1f  %-8s %-9s %-8s %-8s\n", r.precision.c_str(),
                static_cast<long long>(r.batch), num(r.engine_mb, "%.1f").c_str(), num(r.map, "%.4f").c_str(),
                num(r.map50, "%.4f").c_str(), std::isnan(delta) ? "n/a" : num(std::fabs(delta), delta < 0 ? "-%.2f" : "+%.2f").c_str(),
                interval(r.delta_ci, "[%+.2f,%+.2f]").c_str(), num(r.agreement, "%.4f").c_str(),
                interval(r.agreement_ci, "[%.4f,%.4f]").c_str(), r.compute.median, r.compute.p95, r.images_per_s,
                acc.c_str(), agreement.c_str(), verdict(r.deterministic).c_str(), budget.c_str());
    nlohmann::json jr = {{"precision", r.precision}, {"batch", r.batch}, {"compute_ms", to_json(r.compute)},
                         {"images_per_s", r.images_per_s}, {"deterministic", r.deterministic},
                         {"accuracy_verdict", acc}, {"budget_verdict", budget}};
    jr["engine_mb"] = r.engine_mb >= 0 ? nlohmann::json(r.engine_mb) : nlohmann::json(nullptr);
    jr["map50_95"] = r.map >= 0 ? nlohmann::json(r.map) : nlohmann::json(nullptr);
    jr["map50"] = r.map50 >= 0 ? nlohmann::json(r.map50) : nlohmann::json(nullptr);
    jr["delta_fp32_points"] = std::isnan(delta) ? nlohmann::json(nullptr) : nlohmann::json(delta);
    auto ci_json = [](const eval::Interval& i) { return i.valid() ? nlohmann::json{i.lo, i.hi} : nlohmann::json(nullptr); };
    jr["delta_fp32_points_ci95"] = ci_json(r.delta_ci);
    jr["agreement"] = r.agreement >= 0 ? nlohmann::json(r.agreement) : nlohmann::json(nullptr);
    jr["agreement_ci95"] = ci_json(r.agreement_ci);
    jr["agreement_verdict"] = agreement;
    j["rows"].push_back(jr);
    points.push_back({r.precision + " b" + std::to_string(r.batch), r.compute.median, r.map});
  }
  std::printf("Checks: FP16 within %.1f mAP points of FP32 (INT8 within %.1f), same input twice gives identical output, "
              "p95 GPU compute within --budget-ms. Latency = %s compute per batch.\n",
              allowed_drop("fp16"), allowed_drop("int8"), backend == "cuda" ? "GPU" : "CPU");
  if (agree)
    std::printf("Agreement: mAP@[.5:.95] of each engine's conf %g detections against FP32's conf %g detections on the "
                "--agree images (FP32's own row: its self-consistency); at least %.2f for FP16, %.2f for INT8.\n",
                eval::kAgreementCandidateConf, eval::kAgreementReferenceConf, min_agreement("fp16"), min_agreement("int8"));
  if (agree || (ds && fp32 != measured.end() && measured.size() > 1))
    std::printf("95%% intervals: percentile bootstrap over images, %d resamples, seed %llu; the mAP difference "
                "scored on the same resamples for both engines.\n",
                kBootstrap.resamples, static_cast<unsigned long long>(kBootstrap.seed));
  j["all_checks_pass"] = all_pass;
  if (!a.json.empty()) {
    write_json(a.json, j.dump(2));
    std::printf("JSON written to %s\n", a.json.c_str());
  }
  const std::string chart = a.chart.empty() ? "" : a.chart;
  if (!chart.empty()) {
    util::write_file(chart, latency_map_svg(a.model + " on " + device, points));
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
  app->add_option("--agree", a->agree,
                  "Folder of unlabelled images: each precision's agreement with FP32's detections on them (mAP of its "
                  "conf 0.001 detections against FP32's conf 0.25 ones), with a bootstrap 95% interval");
  add_int8_options(app, a->int8);
  app->add_option("--int8-model", a->int8_model,
                  "Q/DQ ONNX of this model (what `kestrel quantize -o` writes): the int8 rows run it instead of "
                  "calibrating here");
  app->add_option("--precisions", a->precisions, "Comma-separated: fp32,fp16,int8 (int8 needs --calib, a Q/DQ model or --int8-model)")->delimiter(',')->capture_default_str()->each([a](const std::string&) {
    a->precisions_set = true;
  });
  app->add_option("--batch", a->batches, "Comma-separated batch sizes")->delimiter(',')->check(CLI::Range(1, 4096))->capture_default_str();
  app->add_option("--budget-ms", a->budget_ms, "p95 latency budget per batch, ms")->check(finite_range(0.0, 1e9));
  add_backend_option(app, a->backend);
  app->add_option("--imgsz", a->imgsz, "Input size for models with dynamic spatial dims")->check(CLI::Range(32, 8192));
  app->add_option("--iterations", a->o.iterations, "Timed inferences per row (at least)")->check(CLI::Range(1, 1000000));
  app->add_option("--duration", a->o.duration_s, "Seconds per row (at least)")->check(finite_range(0.0, 3600.0));
  app->add_flag("--no-cuda-graph", [a](int64_t) { a->o.cuda_graph = false; }, "Time plain enqueues instead of CUDA-graph replays");
  app->add_option("--json", a->json, "Write the table as JSON");
  app->add_option("--chart", a->chart, "Write a latency-vs-mAP chart (SVG)");
  return {app, [a] { return run_compare(*a); }};
}

}  // namespace kestrel::cli
