// kestrel inspect MODEL: per-layer table (name, op, output shape, parameters, FLOPs), totals and the
// model metadata; --json for machines. A Q/DQ model (kestrel quantize -o, or another tool's) is shown
// fused, with each layer's precision and why.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "command.h"
#include "int8_args.h"
#include "kestrel/quant.h"
#include "ir/op_registry.h"
#include "kestrel/passes.h"
#include "model_arg.h"
#ifdef KESTREL_HAS_CUDA
#include "cuda_cli.h"
#endif

namespace kestrel::cli {

namespace {
struct InspectArgs {
  std::string model;
  int64_t batch = 0, imgsz = 0;
  bool json = false, summary = false, optimized = false;
};

int64_t node_params(const Graph& g, const Node& n) {
  Graph one;  // count this node's weights alone with the graph's own rule
  one.nodes.push_back(n);
  for (auto& in : n.inputs)
    if (const Value* v = in.empty() ? nullptr : g.find(in); v && v->is_constant()) one.add_value(*v);
  return one.parameter_count();
}

std::string shape_of_outputs(const Graph& g, const Node& n) {
  std::string s;
  for (auto& o : n.outputs) {
    if (o.empty()) continue;
    if (!s.empty()) s += " ";
    s += shape_str(g.value(o).shape);
  }
  return s;
}

std::string display_shape(const Graph& g, Shape s) {
  std::string str = shape_str(s);
  if (!g.batch_symbol.empty() && !s.empty()) str = "[" + g.batch_symbol + str.substr(str.find_first_of(",]"));
  return str;
}

int run_inspect(const InspectArgs& a) {
#ifdef KESTREL_HAS_CUDA
  if (Runtime::is_engine_file(a.model)) return inspect_engine(a.model, a.json);  // cuda_cli.cpp
#endif
  const bool qdq = is_qdq_model(a.model);
  Graph g = qdq ? quant::load_qdq_onnx(a.model, quant::LayerPrecision::FP16, a.batch, a.imgsz)
                : load_graph(a.model, a.batch, a.imgsz);
  std::string report;
  if (a.optimized) report = passes::optimize_for_engine(g, qdq).summary();
  auto precision_of = [](const Node& n) { return n.attrs.s("kestrel_precision", ""); };
  auto reason_of = [](const Node& n) { return n.attrs.s("kestrel_precision_reason", ""); };
  int64_t total_flops = 0;
  for (auto& n : g.nodes) total_flops += node_flops(g, n);
  const int64_t params = g.parameter_count();
  if (a.json) {
    nlohmann::json j;
    j["model"] = a.model;
    j["name"] = g.name;
    j["opset"] = g.opset;
    j["batch_symbol"] = g.batch_symbol;
    j["parameters"] = params;
    j["gflops"] = static_cast<double>(total_flops) / 1e9;
    j["metadata"] = g.metadata;
    auto tensor = [&](const std::string& v) -> nlohmann::json {
      return {{"name", v}, {"shape", g.value(v).shape}, {"dtype", dtype_name(g.value(v).dtype)}};
    };
    for (auto& in : g.inputs) j["inputs"].push_back(tensor(in));
    for (auto& out : g.outputs) j["outputs"].push_back(tensor(out));
    for (auto& n : g.nodes) {
      nlohmann::json l = {{"name", n.name}, {"op", n.op}, {"params", node_params(g, n)}, {"flops", node_flops(g, n)}};
      // Every tensor input (weights marked constant) and output, so a reader can count the bytes a layer moves.
      for (auto& i : n.inputs)
        if (!i.empty()) {
          nlohmann::json t = tensor(i);
          t["constant"] = g.value(i).is_constant();
          l["inputs"].push_back(t);
        }
      for (auto& o : n.outputs)
        if (!o.empty()) {
          l["outputs"].push_back(tensor(o));
          l["output_shapes"].push_back(g.value(o).shape);
        }
      if (auto it = n.attrs.all().find("kestrel_fused"); it != n.attrs.all().end())
        l["fused"] = std::get<std::vector<std::string>>(it->second);
      if (!precision_of(n).empty()) {
        l["precision"] = precision_of(n);
        l["precision_reason"] = reason_of(n);
      }
      j["layers"].push_back(l);
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("model   %s (%s, opset %d)\n", a.model.c_str(), g.name.c_str(), g.opset);
  for (auto& in : g.inputs)
    std::printf("input   %-12s %s %s\n", in.c_str(), dtype_name(g.value(in).dtype), display_shape(g, g.value(in).shape).c_str());
  for (auto& out : g.outputs)
    std::printf("output  %-12s %s %s\n", out.c_str(), dtype_name(g.value(out).dtype), display_shape(g, g.value(out).shape).c_str());
  if (!a.summary) {
    std::printf("\n%-4s %-40s %-18s %-22s %10s %10s\n", "#", "layer", "op", "output", "params", "MFLOPs");
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const Node& n = g.nodes[i];
      std::string name = n.name.size() > 40 ? "…" + n.name.substr(n.name.size() - 39) : n.name;
      std::string fused;
      if (auto it = n.attrs.all().find("kestrel_fused"); it != n.attrs.all().end()) {
        const auto& parts = std::get<std::vector<std::string>>(it->second);
        fused = "  fused " + std::to_string(parts.size()) + ":";
        for (size_t k = 0; k < parts.size() && k < 4; ++k) fused += " " + parts[k].substr(0, parts[k].find(':'));
        if (parts.size() > 4) fused += " ...";
      }
      if (!precision_of(n).empty()) fused += "  [" + precision_of(n) + ": " + reason_of(n) + "]";
      std::printf("%-4zu %-40s %-18s %-22s %10lld %10.2f%s\n", i, name.c_str(), n.op.c_str(), shape_of_outputs(g, n).c_str(),
                  static_cast<long long>(node_params(g, n)), static_cast<double>(node_flops(g, n)) / 1e6, fused.c_str());
    }
    std::printf("\n");
  }
  if (!report.empty()) std::printf("optimizer\n%s\n", report.c_str());
  if (qdq) {
    int int8 = 0, convs = 0;
    for (const Node& n : g.nodes)
      if (n.op == "kestrel.Conv") {
        ++convs;
        int8 += precision_of(n) == "int8";
      }
    std::printf("quantized   %d of %d convs int8 (Q/DQ model, shown fused)\n", int8, convs);
  }
  std::printf("layers      %zu\n", g.nodes.size());
  std::printf("parameters  %lld\n", static_cast<long long>(params));
  std::printf("GFLOPs      %.1f  (2 x multiply-accumulates, batch %lld)\n", static_cast<double>(total_flops) / 1e9,
              static_cast<long long>(g.batch()));
  if (!g.metadata.empty()) {
    std::printf("metadata\n");
    for (auto& [k, v] : g.metadata) {
      std::string val = v.size() > 100 ? v.substr(0, 97) + "..." : v;
      std::printf("  %-12s %s\n", k.c_str(), val.c_str());
    }
  }
  return 0;
}
}  // namespace

Command add_inspect(CLI::App& root) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* app = root.add_subcommand("inspect", "Show a model's layers, shapes, parameters, FLOPs and metadata");
  app->add_option("model", args->model, "ONNX file or built-in model name (e.g. yolov8n)")->required();
  app->add_option("--batch", args->batch, "Bind the batch size (re-batches static exports where possible)")->check(CLI::Range(1, 4096));
  app->add_option("--imgsz", args->imgsz, "Input size for models with dynamic spatial dims")->check(CLI::Range(32, 8192));
  app->add_flag("--json", args->json, "Print everything as JSON");
  app->add_flag("--summary", args->summary, "Totals only, no per-layer table");
  app->add_flag("--optimized", args->optimized, "Show the graph after the optimizer's fusions, with what each layer fused");
  return {app, [args] { return run_inspect(*args); }};
}

}  // namespace kestrel::cli
