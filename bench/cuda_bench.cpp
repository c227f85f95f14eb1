// CUDA engine benchmark (not a test): GPU compute time of one inference, median over many CUDA-graph
// replays timed with events exactly as shared/bench/anchors.py times PyTorch (an event pair around
// each call, after warm-up), plus cold and warm (timing-cache) build times.
//   cuda_bench MODEL.onnx [--batches 1,32] [--precisions fp16,fp32] [--iters 200] [--cache FILE]
// Prints one line per configuration and a final RESULTS_JSON line.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kestrel/builder.h"
#include "kestrel/onnx.h"
#include "kestrel/runtime.h"

using namespace kestrel;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  for (std::string t; std::getline(ss, t, ',');)
    if (!t.empty()) v.push_back(t);
  return v;
}

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "cuda_bench: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

struct Stats {
  double median, mean, p95, min;
};

Stats stats(std::vector<float> t) {
  std::sort(t.begin(), t.end());
  double sum = 0;
  for (float v : t) sum += v;
  return {t[t.size() / 2], sum / t.size(), t[static_cast<size_t>(t.size() * 0.95)], t.front()};
}

// Event pair around each enqueue (as anchors.py's gpu_time), after warm-up.
Stats time_enqueue(ExecutionContext& ctx, const std::vector<const void*>& in, const std::vector<void*>& out, int iters, int warm) {
  cudaStream_t s = ctx.stream();
  for (int i = 0; i < warm; ++i) ctx.enqueue(in, out, s);
  check(cudaStreamSynchronize(s), "warm-up");
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "event");
  check(cudaEventCreate(&b), "event");
  std::vector<float> t;
  for (int i = 0; i < iters; ++i) {
    check(cudaEventRecord(a, s), "record");
    ctx.enqueue(in, out, s);
    check(cudaEventRecord(b, s), "record");
    check(cudaEventSynchronize(b), "sync");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, a, b), "elapsed");
    t.push_back(ms);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return stats(t);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: cuda_bench MODEL.onnx [--batches 1,32] [--precisions fp16,fp32] [--iters 200] [--cache FILE]\n");
    return 2;
  }
  std::string model = argv[1], cache = (std::filesystem::temp_directory_path() / "kestrel_bench.cache").string();
  std::vector<std::string> batches = {"1", "32"}, precisions = {"fp16"};
  int iters = 200;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--batches") batches = split(v);
    else if (k == "--precisions") precisions = split(v);
    else if (k == "--iters") iters = std::atoi(v.c_str());
    else if (k == "--cache") cache = v;
  }
  try {
    std::vector<std::string> rows;
    for (const std::string& pb : precisions)
      for (const std::string& bs : batches) {
        BuilderConfig cfg;
        cfg.precision = pb == "fp16" ? Precision::FP16 : Precision::FP32;
        cfg.batch = std::atoll(bs.c_str());
        cfg.timing_cache_path = cache;
        Builder builder;
        auto engine = builder.build_from_onnx(model, cfg);
        const BuildReport first = builder.report();
        // A second build with the (now warm) timing cache: the rebuild time users see.
        engine = builder.build_from_onnx(model, cfg);
        const BuildReport warm = builder.report();
        const EngineInfo& info = engine->info();
        auto ctx = engine->create_execution_context();
        const Shape in_shape = info.inputs.at(0).shape;
        const size_t in_bytes = shape_numel(in_shape) * sizeof(float);
        std::vector<float> host(shape_numel(in_shape));
        std::mt19937 rng(0);
        std::uniform_real_distribution<float> u(0.f, 1.f);
        for (float& v : host) v = u(rng);  // never time on zeros
        void* din = nullptr;
        check(cudaMalloc(&din, in_bytes), "malloc");
        check(cudaMemcpy(din, host.data(), in_bytes, cudaMemcpyHostToDevice), "copy");
        std::vector<void*> dout;
        for (auto& o : info.outputs) {
          void* p = nullptr;
          check(cudaMalloc(&p, shape_numel(o.shape) * dtype_size(o.dtype)), "malloc");
          dout.push_back(p);
        }
        std::vector<const void*> in = {din};
        ctx->set_cuda_graphs(true);
        const Stats g = time_enqueue(*ctx, in, dout, iters, 30);
        ctx->set_cuda_graphs(false);
        const Stats e = time_enqueue(*ctx, in, dout, std::max(20, iters / 4), 5);
        char line[1024];
        std::snprintf(line, sizeof(line),
                      "{\"runtime\": \"kestrel-cuda+graph\", \"prec\": \"%s\", \"batch\": %s, \"median_ms\": %.4f, \"mean_ms\": %.4f, "
                      "\"p95_ms\": %.4f, \"min_ms\": %.4f, \"eager_median_ms\": %.4f, \"layers\": %zu, \"arena_mib\": %.2f, "
                      "\"activations_mib\": %.2f, \"build_cold_s\": %.2f, \"build_warm_s\": %.2f, \"layers_timed\": %d, "
                      "\"layers_cached\": %d, \"gpu\": \"%s\"}",
                      pb.c_str(), bs.c_str(), g.median, g.mean, g.p95, g.min, e.median, info.layers.size(),
                      info.arena_bytes / 1048576.0, info.activation_bytes / 1048576.0, first.total_s, warm.total_s,
                      first.layers_tuned, warm.layers_from_cache, info.gpu_name.c_str());
        std::printf("%s\n", line);
        std::fflush(stdout);
        rows.push_back(line);
        cudaFree(din);
        for (void* p : dout) cudaFree(p);
      }
    std::printf("RESULTS_JSON [");
    for (size_t i = 0; i < rows.size(); ++i) std::printf("%s%s", i ? ", " : "", rows[i].c_str());
    std::printf("]\n");
  } catch (const Error& e) {
    std::fprintf(stderr, "cuda_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
