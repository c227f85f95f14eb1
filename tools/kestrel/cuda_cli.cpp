#include "cuda_cli.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "kestrel/cuda_model.h"
#include "util/file_io.h"

namespace kestrel::cli {

namespace {

std::string mib(int64_t bytes) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.2f MiB", static_cast<double>(bytes) / (1 << 20));
  return b;
}

}  // namespace

std::unique_ptr<Engine> cuda_engine_for(const EngineSpec& spec) { return open_cuda_engine(spec.model, model_options(spec)); }

int run_cuda(const std::string& model, const std::string& input, const std::string& output, int64_t batch, int64_t imgsz) {
  auto engine = cuda_engine_for(EngineSpec{model, "cuda", "fp32", batch, imgsz});
  const EngineInfo& info = engine->info();
  KESTREL_CHECK(info.inputs.size() == 1, "the engine has ", info.inputs.size(), " inputs; kestrel run feeds exactly one");
  const EngineTensorInfo& in = info.inputs[0];
  HostTensor x(DType::F32, in.shape);
  if (input.empty()) {  // the same synthetic pattern as the CPU path
    const int64_t hw = in.shape.size() == 4 ? in.shape[2] * in.shape[3] : x.numel();
    for (int64_t i = 0; i < x.numel(); ++i)
      x.data<float>()[i] = 0.5f + 0.5f * std::sin(0.001f * static_cast<float>(i % hw) + static_cast<float>(i / hw));
    std::printf("input: synthetic test pattern %s\n", shape_str(in.shape).c_str());
  } else {
    const std::vector<char> bytes = util::read_file(input);
    if (bytes.size() != x.nbytes())
      fail(input, " has ", bytes.size(), " bytes; input '", in.name, "' ", shape_str(in.shape), " float32 needs ", x.nbytes(), " bytes");
    std::memcpy(x.raw(), bytes.data(), bytes.size());
  }
  auto ctx = engine->create_execution_context(runtime_config());
  ctx->run({x});  // warm-up (graph capture)
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<HostTensor> ys = ctx->run({x});
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  for (size_t i = 0; i < ys.size(); ++i) {
    const HostTensor& y = ys[i];
    std::string path = "(not written)";
    if (!output.empty()) {
      path = output;
      if (i > 0) {
        const auto dot = output.rfind('.');
        path = dot == std::string::npos ? output + "." + std::to_string(i)
                                        : output.substr(0, dot) + "." + std::to_string(i) + output.substr(dot);
      }
      util::write_file(path, y.raw(), y.nbytes());
    }
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    for (float v : y.span<float>()) mn = std::min<double>(mn, v), mx = std::max<double>(mx, v), sum += v;
    std::printf("%s %s -> %s  (min %.4g, max %.4g, mean %.4g)\n", info.outputs[i].name.c_str(), shape_str(y.shape()).c_str(),
                path.c_str(), mn, mx, y.numel() ? sum / static_cast<double>(y.numel()) : 0.0);
  }
  std::printf("cuda backend (%s, %s): %.2f ms including copies\n", info.gpu_name.c_str(), precision_name(info.precision), ms);
  return 0;
}

int inspect_engine(const std::string& path, bool json) {
  const EngineInfo e = Runtime::read_info(path);
  if (json) {
    nlohmann::json j;
    j["engine"] = path;
    j["format_version"] = e.format_version;
    j["kestrel_version"] = e.kestrel_version;
    j["gpu"] = e.gpu_name;
    j["compute_capability"] = std::to_string(e.cc_major) + "." + std::to_string(e.cc_minor);
    j["precision"] = precision_name(e.precision);
    j["tf32"] = e.tf32;
    j["batch"] = e.batch;
    j["batch_profile"] = {{"min", e.min_batch}, {"opt", e.opt_batch}, {"max", e.max_batch}};
    for (auto& p : e.plans)
      j["plans"].push_back({{"batch", p.batch}, {"layers", p.layers}, {"arena_bytes", p.arena_bytes}});
    j["imgsz"] = e.imgsz;
    j["model"] = e.model_name;
    j["model_hash"] = e.model_hash;
    j["build_options"] = e.build_options;
    j["cuda_runtime_version"] = e.cuda_runtime_version;
    j["cudnn_version"] = e.cudnn_version;
    j["arena_bytes"] = e.arena_bytes;
    j["activation_bytes"] = e.activation_bytes;
    j["weight_bytes"] = e.weight_bytes;
    j["eliminated_copies"] = e.eliminated_copies;
    j["metadata"] = e.metadata;
    for (auto& t : e.inputs) j["inputs"].push_back({{"name", t.name}, {"dtype", dtype_name(t.dtype)}, {"shape", t.shape}});
    for (auto& t : e.outputs) j["outputs"].push_back({{"name", t.name}, {"dtype", dtype_name(t.dtype)}, {"shape", t.shape}});
    for (auto& l : e.layers)
      j["layers"].push_back({{"name", l.name}, {"op", l.op}, {"tactic", l.tactic}, {"fused", l.fused}, {"inputs", l.inputs},
                             {"outputs", l.outputs}, {"time_ms", l.time_ms}, {"scratch_bytes", l.scratch_bytes},
                             {"stream", l.stream},
                             {"precision", l.precision}, {"precision_reason", l.precision_reason}});
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("engine      %s (format %u, Kestrel %s)\n", path.c_str(), e.format_version, e.kestrel_version.c_str());
  std::printf("model       %s (hash %s)\n", e.model_name.c_str(), e.model_hash.c_str());
  std::printf("built for   %s, compute capability %d.%d, CUDA runtime %d, cuDNN %d\n", e.gpu_name.c_str(), e.cc_major,
              e.cc_minor, e.cuda_runtime_version, e.cudnn_version);
  std::printf("precision   %s%s, batch %lld, imgsz %lld\n", precision_name(e.precision), e.tf32 ? " (TF32 allowed)" : "",
              static_cast<long long>(e.batch), static_cast<long long>(e.imgsz));
  if (e.plans.size() > 1) {
    std::printf("profile     batch %lld to %lld, tuned for %lld; plans:", static_cast<long long>(e.min_batch),
                static_cast<long long>(e.max_batch), static_cast<long long>(e.opt_batch));
    for (auto& p : e.plans)
      std::printf(" b%lld (%lld layers, arena %.1f MiB)", static_cast<long long>(p.batch), static_cast<long long>(p.layers),
                  p.arena_bytes / 1048576.0);
    std::printf("\n            the layers below are the plan for batch %lld\n", static_cast<long long>(e.opt_batch));
  }
  std::printf("options     %s\n", e.build_options.c_str());
  for (auto& t : e.inputs) std::printf("input       %-12s %s %s\n", t.name.c_str(), dtype_name(t.dtype), shape_str(t.shape).c_str());
  for (auto& t : e.outputs) std::printf("output      %-12s %s %s\n", t.name.c_str(), dtype_name(t.dtype), shape_str(t.shape).c_str());
  std::printf("\n%-4s %-36s %-17s %-16s %8s  %-34s %s\n", "#", "layer", "op", "tactic", "ms", "output", "fused");
  double total = 0;
  for (size_t i = 0; i < e.layers.size(); ++i) {
    const EngineLayerInfo& l = e.layers[i];
    std::string name = l.name.size() > 36 ? "…" + l.name.substr(l.name.size() - 35) : l.name;
    std::string fused;
    for (auto& f : l.fused) fused += (fused.empty() ? "" : " ") + f;
    if (!l.precision.empty()) fused += "  [" + l.precision + ": " + l.precision_reason + "]";
    if (l.stream > 0) fused += "  [aux stream " + std::to_string(l.stream) + "]";
    std::printf("%-4zu %-36s %-17s %-16s %8.4f  %-34s %s\n", i, name.c_str(), l.op.c_str(), l.tactic.c_str(), l.time_ms,
                l.outputs.empty() ? "" : l.outputs[0].c_str(), fused.c_str());
    total += l.time_ms;
  }
  std::printf("\nlayers      %zu (sum of timed layers %.3f ms)\n", e.layers.size(), total);
  int aux = 0, on_aux = 0;
  for (const EngineLayerInfo& l : e.layers) aux = std::max(aux, l.stream), on_aux += l.stream > 0;
  if (aux > 0)
    std::printf("streams     %d auxiliary, %d layers on them (branches that run side by side with the main stream)\n", aux,
                on_aux);
  std::printf("memory      arena %s peak vs %s sum of activations (%.1f%%); weights %s\n", mib(e.arena_bytes).c_str(),
              mib(e.activation_bytes).c_str(), e.activation_bytes ? 100.0 * e.arena_bytes / e.activation_bytes : 0.0,
              mib(e.weight_bytes).c_str());
  std::printf("views       %lld Concat/Split/Slice/Reshape layers run as views (no copy)\n",
              static_cast<long long>(e.eliminated_copies));
  return 0;
}

}  // namespace kestrel::cli
