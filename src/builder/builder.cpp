// Builder: ONNX (or a graph) -> Engine. import -> fuse -> lower -> views -> tune -> pack -> emit.
#include "kestrel/builder.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include <cuda_runtime.h>

#include "backend/cuda/check.h"
#include "builder/build_plan.h"
#include "builder/precision_by_time.h"
#include "builder/tuner.h"
#include "kestrel/onnx.h"
#include "kestrel/passes.h"
#include "kestrel/quant.h"
#include "kestrel/version.h"
#include "quant/internal.h"
#include "runtime/batch_profile.h"
#include "runtime/device.h"
#include "runtime/engine_impl.h"
#include "util/file_io.h"

namespace kestrel {

namespace {
double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Adds a note once, whatever the number of plans that make it.
void add_note(BuildReport& report, const std::string& s) {
  if (std::find(report.notes.begin(), report.notes.end(), s) == report.notes.end()) report.notes.push_back(s);
}

// One batch's plan: lower -> views -> layout -> weights -> tune -> pack -> emit.
rt::Plan make_plan(const Graph& g, const BuilderConfig& config, const rt::DeviceInfo& dev, const std::string& model_hash,
                   const std::string& model_name, BuildReport& report) {
  bld::BuildPlan p = bld::lower(g, config);
  if (const int folded = bld::fold_requantize(p))
    add_note(report, std::to_string(folded) + " INT8 convolutions write int8 for the next INT8 layer");
  bld::plan_views(p);
  bld::resolve_layout(p);
  bld::assemble_weights(p);

  const auto t_tune = std::chrono::steady_clock::now();
  bld::TuneOptions to;
  to.workspace_limit = config.workspace_limit;
  to.cache_path = config.timing_cache_path;
  to.device_key = bld::timing_cache_key(dev);
  to.verbose = config.verbose;
  to.reference_only = config.reference_tactics;
  to.obey_precision = config.obey_precision_constraints;
  to.cudnn_tactics = config.cudnn_tactics;
  to.cublaslt_tactics = config.cublaslt_tactics;
  to.forced = config.forced_tactics;
  to.cudnn_plan_cache = config.cudnn_plan_cache;
  const bld::TuneStats ts = bld::tune(p, to);
  report.candidates.clear();
  for (const auto& [layer, tactics] : ts.candidates) report.candidates.push_back({layer, tactics});
  report.tune_s += since(t_tune);
  report.layers_tuned += ts.tuned;
  report.layers_from_cache += ts.cached;
  report.tactics_rejected += ts.rejected;
  for (const std::string& n : ts.notes) add_note(report, n);

  bld::assign_streams(p, config.max_aux_streams);
  bld::pack_arena(p);

  rt::EngineHeader h;
  h.format_version = rt::kFormatVersion;
  h.cc_major = dev.cc_major;
  h.cc_minor = dev.cc_minor;
  h.kestrel_version = KESTREL_VERSION_STRING;
  h.gpu_name = dev.name;
  h.model_name = model_name.empty() ? g.name : model_name;
  h.model_hash = model_hash;
  h.cuda_runtime_version = dev.cuda_runtime_version;
  h.cudnn_version = dev.cudnn_version;
  h.precision = config.precision;
  h.tf32 = config.tf32;
  h.batch = g.batch();
  if (!g.inputs.empty() && g.value(g.inputs[0]).shape.size() == 4) h.imgsz = g.value(g.inputs[0]).shape[3];
  std::ostringstream opts;
  opts << "precision=" << precision_name(config.precision) << " tf32=" << (config.tf32 ? 1 : 0) << " batch=" << h.batch
       << " imgsz=" << h.imgsz << " workspace=" << (config.workspace_limit >> 20) << "MiB"
       << " optimize=" << (config.optimize ? 1 : 0) << " aux_streams=" << config.max_aux_streams;
  h.build_options = opts.str();
  h.metadata = g.metadata;
  return bld::emit(p, h);
}

// What a precision choice depends on besides the device: the graph with its weights and scales, every
// layer's precision (graph_hash leaves precisions out), the batch, and the options that change the tactics.
std::string precision_choice_signature(const Graph& g, const BuilderConfig& config) {
  std::string precisions;
  for (const Node& n : g.nodes)
    for (auto& [k, a] : n.attrs.all())
      if (quant::detail::is_precision_attr(k))
        if (const auto* v = std::get_if<std::string>(&a)) precisions += n.name + '\t' + k + '=' + *v + '\n';
  char buf[240];
  std::snprintf(buf, sizeof(buf), "|precisions %016llx|batch %lld|ws %lld|cudnn %d|cublaslt %d|below %.3f|rules %s",
                static_cast<unsigned long long>(rt::fnv1a64(precisions.data(), precisions.size())),
                static_cast<long long>(g.batch()), static_cast<long long>(config.workspace_limit),
                config.cudnn_tactics ? 1 : 0, config.cublaslt_tactics ? 1 : 0, bld::kFp16Faster, bld::kPrecisionRules);
  return quant::graph_hash(g) + buf;
}

// The plan of an INT8 build. Under "prefer" precision constraints (precision_by_time.h): the INT8 plan,
// the FP16 trial and, when some convs are faster in FP16, the mixed plan, each plan (batch) deciding for
// itself; the trial plans' tuning counts go to the report, notes and candidates come from the plan kept.
// The choice goes to the timing cache, and a rebuild that finds it there tunes only the plan it chose.
rt::Plan make_int8_plan(const Graph& g, const BuilderConfig& config, const rt::DeviceInfo& dev,
                        const std::string& model_hash, const std::string& model_name, BuildReport& report) {
  const bool choose = !config.obey_precision_constraints && !config.reference_tactics && config.forced_tactics.empty();
  std::map<std::string, std::string> every_int8;
  for (const Node& n : g.nodes)
    if (n.op == "kestrel.Conv" && n.attrs.s(quant::detail::kPrecisionAttr, "") == "int8") every_int8[n.name] = "timed in FP16";
  if (!choose || every_int8.empty()) return make_plan(g, config, dev, model_hash, model_name, report);

  // A graph without any INT8 conv left lowers as FP16 (what an INT8 engine runs outside its INT8 convs).
  BuilderConfig fp16_config = config;
  fp16_config.precision = Precision::FP16;
  auto trial = [&](const Graph& graph, BuildReport& r) {
    rt::Plan plan = make_plan(graph, quant::has_qdq(graph) ? config : fp16_config, dev, model_hash, model_name, r);
    report.tune_s += r.tune_s;
    report.layers_tuned += r.layers_tuned;
    report.layers_from_cache += r.layers_from_cache;
    report.tactics_rejected += r.tactics_rejected;
    return plan;
  };
  auto adopt = [&](rt::Plan plan, const BuildReport& r) {
    for (const std::string& n : r.notes) add_note(report, n);
    report.candidates = r.candidates;
    return plan;
  };
  const std::string device_key = bld::timing_cache_key(dev);
  const std::string signature =
      config.timing_cache_path.empty() ? std::string() : precision_choice_signature(g, config);
  if (auto cached = bld::load_precision_choice(config.timing_cache_path, device_key, signature, every_int8)) {
    BuildReport r;
    rt::Plan plan;
    if (cached->fp16.empty()) {
      plan = trial(g, r);
    } else {
      Graph gc = g;
      quant::run_in_fp16(gc, cached->fp16);
      plan = trial(gc, r);
    }
    r.notes.push_back(cached->note + " (the choice of an earlier build, from the timing cache)");
    return adopt(std::move(plan), r);
  }
  BuildReport r8, r16, rm;
  rt::Plan p8 = trial(g, r8);
  Graph g16 = g;
  quant::run_in_fp16(g16, every_int8);
  const rt::Plan p16 = trial(g16, r16);
  const std::map<std::string, std::string> faster = bld::convs_faster_in_fp16(p8, p16);
  if (faster.empty()) {
    char note[160];
    std::snprintf(note, sizeof(note), "batch %lld: no INT8 convolution is clearly faster in FP16",
                  static_cast<long long>(g.batch()));
    bld::save_precision_choice(config.timing_cache_path, device_key, signature, {{}, note});
    r8.notes.push_back(note);
    return adopt(std::move(p8), r8);
  }
  Graph gm = g;
  quant::run_in_fp16(gm, faster);
  rt::Plan pm = trial(gm, rm);
  const double t8 = bld::plan_time_ms(p8), tm = bld::plan_time_ms(pm);
  const bool mixed = tm < t8;
  char note[320];
  std::snprintf(note, sizeof(note), "batch %lld: %zu INT8 convolutions %s (layers %.3f ms against %.3f ms all INT8)%s",
                static_cast<long long>(g.batch()), faster.size(),
                mixed ? "run in FP16, faster there" : "are faster in FP16 alone, but not together", tm, t8,
                mixed ? "; inspect shows each one's times; obeying the precision constraints keeps them INT8"
                      : ": all stay INT8");
  bld::save_precision_choice(config.timing_cache_path, device_key, signature,
                             {mixed ? faster : std::map<std::string, std::string>{}, note});
  BuildReport& kept = mixed ? rm : r8;
  kept.notes.push_back(note);
  return adopt(mixed ? std::move(pm) : std::move(p8), kept);
}

}  // namespace

std::string hash_bytes(const void* data, size_t size) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(rt::fnv1a64(data, size)));
  return buf;
}

Builder::Builder(int device) : device_(device) {}

std::unique_ptr<Engine> Builder::build_from_onnx(const std::string& onnx_path, const BuilderConfig& config) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<char> bytes = util::read_file(onnx_path);
  ImportOptions io;
  io.batch = config.batch;
  io.imgsz = config.imgsz;
  // INT8 from a file: a Q/DQ ONNX (ours or another tool's), read into the fused graph with its scales.
  Graph g = config.precision == Precision::INT8
                ? quant::load_qdq_onnx_bytes(std::string(bytes.begin(), bytes.end()), quant::LayerPrecision::FP16, onnx_path,
                                             config.batch, config.imgsz)
                : import_onnx_bytes(bytes.data(), bytes.size(), io, onnx_path);
  const double import_s = since(t0);
  auto engine = build(g, config, hash_bytes(bytes.data(), bytes.size()), std::filesystem::path(onnx_path).filename().string());
  report_.import_s = import_s;
  report_.total_s = since(t0);
  return engine;
}

std::unique_ptr<Engine> Builder::build(const Graph& graph, const BuilderConfig& config, const std::string& model_hash,
                                       const std::string& model_name) {
  const auto t0 = std::chrono::steady_clock::now();
  report_ = {};
  KESTREL_CHECK(config.max_aux_streams >= 0 && config.max_aux_streams < rt::kMaxStreams, "max_aux_streams ",
                config.max_aux_streams, " is outside [0, ", rt::kMaxStreams - 1, "]");
  const rt::DeviceInfo dev = rt::query_device(device_);
  KCUDA(cudaSetDevice(device_));

  Graph g = graph;
  const auto t_opt = std::chrono::steady_clock::now();
  // The fusion passes (passes::optimize_for_engine): BN folding, kestrel.Conv (activation and residual
  // in the epilogue), kestrel.SPPF, kestrel.DetectV8/V5, kestrel.Attention. Without them (--no-optimize)
  // the graph runs op by op. A Q/DQ graph (quant::quantize_graph, quant::load_qdq_onnx) is fused
  // already and gets only the attention.
  const bool qdq = quant::has_qdq(g);
  if (qdq) {
    KESTREL_CHECK(config.precision == Precision::INT8,
                  "the model is quantized (QuantizeLinear / DequantizeLinear nodes): build it as INT8 (--int8)");
    quant::check_qdq_placement(g);
  }
  if (config.optimize) report_.optimize_summary = passes::optimize_for_engine(g, qdq).summary();
  report_.optimize_s = since(t_opt);

  // The plans: one per batch of the profile, or the graph's own batch.
  rt::EngineFile file;
  std::vector<int64_t> batches{g.batch()};
  if (config.max_batch > 0) {
    KESTREL_CHECK(config.batch == 0, "a batch (", config.batch, ") and a batch profile (max ", config.max_batch,
                  ") are exclusive: give one");
    file.min_batch = config.min_batch > 0 ? config.min_batch : 1;
    file.opt_batch = config.opt_batch > 0 ? config.opt_batch : config.max_batch;
    file.max_batch = config.max_batch;
    batches = rt::profile_batches(file.min_batch, file.opt_batch, file.max_batch);
  } else {
    KESTREL_CHECK(config.min_batch == 0 && config.opt_batch == 0, "a batch profile needs max_batch");
    file.min_batch = file.opt_batch = file.max_batch = g.batch();
  }
  report_.plan_batches = batches;
  for (int64_t b : batches) {
    auto plan = config.precision == Precision::INT8 ? make_int8_plan : make_plan;
    if (b == g.batch()) {  // the graph as it is: no copy of its weights
      file.plans.push_back(plan(g, config, dev, model_hash, model_name, report_));
      continue;
    }
    Graph gb = g;
    passes::rebatch(gb, b);
    file.plans.push_back(plan(gb, config, dev, model_hash, model_name, report_));
  }
  if (config.max_batch > 0)
    for (rt::Plan& p : file.plans)
      p.header.build_options += " profile=" + std::to_string(file.min_batch) + "/" + std::to_string(file.opt_batch) + "/" +
                                std::to_string(file.max_batch);
  auto engine = std::make_unique<Engine>(rt::make_engine_impl(std::move(file), device_));
  report_.total_s = since(t0);
  return engine;
}

}  // namespace kestrel
