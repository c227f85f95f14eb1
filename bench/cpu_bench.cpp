// CPU reference backend speed: median wall time per image for each model given on the command line.
// usage: cpu_bench [--runs N] [--threads T] MODEL.onnx...
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kestrel/cpu_backend.h"
#include "kestrel/onnx.h"

int main(int argc, char** argv) {
  int runs = 10;
  std::vector<std::string> models;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--runs") && i + 1 < argc) runs = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) omp_set_num_threads(std::atoi(argv[++i]));
    else models.push_back(argv[i]);
  }
  if (models.empty()) {
    std::fprintf(stderr, "usage: cpu_bench [--runs N] [--threads T] MODEL.onnx...\n");
    return 2;
  }
  std::printf("%-40s %8s %10s %10s %10s\n", "model", "runs", "median ms", "min ms", "max ms");
  for (const auto& path : models) {
    try {
      kestrel::Graph g = kestrel::import_onnx(path);
      kestrel::CpuExecutor exec(g);
      const kestrel::Value& in = g.value(g.inputs[0]);
      kestrel::HostTensor x(kestrel::DType::F32, in.shape);
      std::mt19937 rng(0);
      std::uniform_real_distribution<float> u(0.f, 1.f);
      for (float& v : x.span<float>()) v = u(rng);
      exec.run({x});  // warm-up: first-touch allocations, OpenBLAS thread start
      std::vector<double> ms;
      for (int r = 0; r < runs; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        exec.run({x});
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
      std::sort(ms.begin(), ms.end());
      std::printf("%-40s %8d %10.1f %10.1f %10.1f\n", path.substr(path.find_last_of('/') + 1).c_str(), runs,
                  ms[ms.size() / 2], ms.front(), ms.back());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "cpu_bench: %s: %s\n", path.c_str(), e.what());
      return 1;
    }
  }
  return 0;
}
