#include "bench_stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace kestrel::cli {

Summary summarize(std::vector<double> v) {
  Summary s;
  s.count = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) {
    const size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
  };
  s.min = v.front();
  s.max = v.back();
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  s.median = v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  s.p90 = pct(0.90);
  s.p95 = pct(0.95);
  s.p99 = pct(0.99);
  double var = 0;
  for (double x : v) var += (x - s.mean) * (x - s.mean);
  s.cv = s.mean > 0 ? std::sqrt(var / static_cast<double>(v.size())) / s.mean : 0;
  return s;
}

nlohmann::json to_json(const Summary& s) {
  return {{"min", s.min}, {"mean", s.mean}, {"median", s.median}, {"p90", s.p90}, {"p95", s.p95},
          {"p99", s.p99}, {"max", s.max},   {"cv", s.cv},         {"count", s.count}};
}

namespace {
Summary field(const BenchResult& r, double Iteration::*f) {
  std::vector<double> v;
  v.reserve(r.iterations.size());
  for (const auto& it : r.iterations) v.push_back(it.*f);
  return summarize(std::move(v));
}

void print_line(const char* name, const Summary& s, bool measured = true) {
  if (!measured) {
    std::printf("%-16s n/a\n", name);
    return;
  }
  std::printf("%-16s min %.4f  mean %.4f  median %.4f  p90 %.4f  p95 %.4f  p99 %.4f  max %.4f ms  (CV %.1f%%)\n", name,
              s.min, s.mean, s.median, s.p90, s.p95, s.p99, s.max, s.cv * 100);
}
}  // namespace

void add_warnings(BenchResult& r) {
  const Summary compute = field(r, &Iteration::compute);
  const Summary enqueue = field(r, &Iteration::enqueue);
  if (compute.cv > 0.10)
    r.warnings.push_back("GPU compute time is unstable (coefficient of variation " +
                         std::to_string(static_cast<int>(compute.cv * 100)) +
                         "%): other work on the device or clock changes; use --duration for more samples");
  if (r.backend == "cuda" && enqueue.median > 0.8 * compute.median && !r.cuda_graph)
    r.warnings.push_back("throughput may be bound by enqueue time (host launch overhead); try --cuda-graph");
}

void print_report(const BenchResult& r) {
  std::printf("\n=== Performance summary: %s %s batch %lld on %s ===\n", r.model.c_str(), r.precision.c_str(),
              static_cast<long long>(r.batch), r.device.c_str());
  std::printf("%-16s %.2f inferences/s, %.2f images/s (%zu inferences in %.2f s, %d stream%s%s)\n", "Throughput",
              r.throughput(), r.throughput() * static_cast<double>(r.batch), r.inferences, r.wall_s, r.streams,
              r.streams > 1 ? "s" : "", r.cuda_graph ? ", CUDA graph" : "");
  const bool gpu = r.backend == "cuda";
  print_line("Latency", field(r, &Iteration::latency));
  print_line("Enqueue Time", field(r, &Iteration::enqueue), gpu);
  print_line("H2D Latency", field(r, &Iteration::h2d), gpu && r.data_transfers);
  print_line(gpu ? "GPU Compute" : "Compute", field(r, &Iteration::compute));
  print_line("D2H Latency", field(r, &Iteration::d2h), gpu && r.data_transfers);
  const Summary compute = field(r, &Iteration::compute);
  if (r.flops_per_inference > 0 && compute.median > 0) {
    const double tflops = r.flops_per_inference / (compute.median * 1e-3) / 1e12;
    const char* unit = r.precision == "int8" ? "TOPS" : "TFLOP/s";  // INT8 peaks are quoted in operations
    if (r.peak_tflops > 0)
      std::printf("%-16s %.2f %s achieved = %.1f%% of %.0f %s peak (%s)\n", "Compute rate", tflops, unit,
                  100 * tflops / r.peak_tflops, r.peak_tflops, unit, r.peak_basis.c_str());
    else
      std::printf("%-16s %.3f %s achieved (%.2f GFLOPs per inference)\n", "Compute rate", tflops, unit,
                  r.flops_per_inference / 1e9);
  }
  if (r.power_w_mean >= 0)
    std::printf("%-16s mean %.0f W, max %.0f W; GPU utilisation %.0f%%\n", "Power", r.power_w_mean, r.power_w_max,
                r.util_pct_mean);
  else if (gpu)
    std::printf("%-16s n/a (NVML not available)\n", "Power");
  std::printf("Definitions (as trtexec): Latency = H2D + GPU Compute + D2H of one inference; GPU Compute = the "
              "engine's kernels alone; Enqueue Time = host time to launch them.\n");
  for (const auto& w : r.warnings) std::printf("[W] %s\n", w.c_str());
  if (!r.layer_profile.empty()) {
    // Whole names (layer, op, tactic), the column as wide as the longest: a cut name no longer says which
    // layer, nor which kernel, it was.
    int width = 50;
    for (const auto& [name, ms] : r.layer_profile) width = std::max(width, static_cast<int>(name.size()));
    std::printf("\n%-*s %10s\n", width, "layer (separate profiling run)", "mean ms");
    double total = 0;
    for (const auto& [name, ms] : r.layer_profile) {
      std::printf("%-*s %10.4f\n", width, name.c_str(), ms);
      total += ms;
    }
    std::printf("%-*s %10.4f\n", width, "total", total);
  }
}

nlohmann::json to_json(const BenchResult& r) {
  nlohmann::json j = {{"backend", r.backend},         {"device", r.device},       {"model", r.model},
                      {"precision", r.precision},     {"batch", r.batch},         {"streams", r.streams},
                      {"cuda_graph", r.cuda_graph},   {"data_transfers", r.data_transfers},
                      {"wall_s", r.wall_s},           {"inferences", r.inferences}};
  j["throughput_inferences_per_s"] = r.throughput();
  j["throughput_images_per_s"] = r.throughput() * static_cast<double>(r.batch);
  j["latency_ms"] = to_json(field(r, &Iteration::latency));
  j["enqueue_ms"] = to_json(field(r, &Iteration::enqueue));
  j["h2d_ms"] = to_json(field(r, &Iteration::h2d));
  j["gpu_compute_ms"] = to_json(field(r, &Iteration::compute));
  j["d2h_ms"] = to_json(field(r, &Iteration::d2h));
  j["flops_per_inference"] = r.flops_per_inference;
  const Summary compute = field(r, &Iteration::compute);
  const double tflops = compute.median > 0 ? r.flops_per_inference / (compute.median * 1e-3) / 1e12 : 0;
  j["achieved_tflops"] = tflops;
  j["peak_tflops"] = r.peak_tflops > 0 ? nlohmann::json(r.peak_tflops) : nlohmann::json(nullptr);
  j["peak_basis"] = r.peak_basis;
  j["percent_of_peak"] = r.peak_tflops > 0 ? nlohmann::json(100 * tflops / r.peak_tflops) : nlohmann::json(nullptr);
  j["power_w_mean"] = r.power_w_mean >= 0 ? nlohmann::json(r.power_w_mean) : nlohmann::json(nullptr);
  j["power_w_max"] = r.power_w_max >= 0 ? nlohmann::json(r.power_w_max) : nlohmann::json(nullptr);
  j["gpu_utilization_pct"] = r.util_pct_mean >= 0 ? nlohmann::json(r.util_pct_mean) : nlohmann::json(nullptr);
  j["warnings"] = r.warnings;
  for (const auto& [name, ms] : r.layer_profile) j["layer_profile"].push_back({{"layer", name}, {"mean_ms", ms}});
  return j;
}

void print_host_times(const pipeline::HostTimes& h, double seconds) {
  std::printf("Host: of %.1f ms, %.1f ms waiting for decoded images, %.1f ms staging images, %.1f ms waiting for "
              "results, %.1f ms handing them on; first batch submitted after %.1f ms\n",
              seconds * 1e3, h.wait_images_ms, h.staging_ms, h.results_ms, h.sink_ms, h.first_batch_ms);
}

nlohmann::json to_json(const pipeline::HostTimes& h) {
  return {{"wait_images_ms", h.wait_images_ms}, {"staging_ms", h.staging_ms}, {"results_ms", h.results_ms},
          {"sink_ms", h.sink_ms}, {"first_batch_ms", h.first_batch_ms}};
}

}  // namespace kestrel::cli
