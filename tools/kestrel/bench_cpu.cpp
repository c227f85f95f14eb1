// The CPU reference backend under the benchmark loop: latency = compute (no transfers, no enqueue).
#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "bench_runner.h"
#include "ir/op_registry.h"
#include "kestrel/cpu_backend.h"
#include "util/progress.h"

namespace kestrel::cli {

double graph_flops(const Graph& g) {
  double f = 0;
  for (const auto& n : g.nodes) f += static_cast<double>(node_flops(g, n));
  return f;
}

BenchResult bench_cpu(const Graph& graph, const BenchOptions& o) {
  using Clock = std::chrono::steady_clock;
  BenchResult r;
  r.backend = "cpu";
  r.device = "CPU (" + std::to_string(std::thread::hardware_concurrency()) + " threads)";
  r.precision = "fp32";
  r.batch = graph.batch();
  r.data_transfers = false;
  r.flops_per_inference = graph_flops(graph);
  CpuExecutor exec(graph);
  HostTensor x(DType::F32, graph.value(graph.inputs.at(0)).shape);
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (float& v : x.span<float>()) v = u(rng);
  const auto warm_end = Clock::now() + std::chrono::duration<double, std::milli>(o.warmup_ms);
  do exec.run({x});
  while (Clock::now() < warm_end);
  const auto start = Clock::now();
  util::ProgressBar bar("bench", o.iterations, "inf");
  while (static_cast<int>(r.iterations.size()) < o.iterations ||
         std::chrono::duration<double>(Clock::now() - start).count() < o.duration_s) {
    const auto t0 = Clock::now();
    exec.run({x});
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    r.iterations.push_back({0, ms, 0, ms, 0});
    bar.advance();
  }
  bar.finish();
  r.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  r.inferences = r.iterations.size();
  if (o.profile) r.layer_profile = exec.profile({x}, std::max(1, std::min(o.iterations, 10)));
  add_warnings(r);
  return r;
}

}  // namespace kestrel::cli
