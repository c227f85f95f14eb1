#pragma once
// trtexec-style measurement records and their summaries (min / mean / median / p90 / p95 / p99 / max,
// coefficient of variation), shared by the CPU and CUDA benchmark loops.
#include <nlohmann/json.hpp>

#include "kestrel/pipeline.h"

#include <string>
#include <vector>

namespace kestrel::cli {

struct Summary {
  double min = 0, mean = 0, median = 0, p90 = 0, p95 = 0, p99 = 0, max = 0, cv = 0;  // cv: stddev / mean
  size_t count = 0;
};
// Percentiles as trtexec reports them: the value at rank ceil(p * n) of the sorted samples.
Summary summarize(std::vector<double> samples);
nlohmann::json to_json(const Summary& s);

// The batch loop's own thread over a run of `seconds`: one line for people, an object for --json.
void print_host_times(const pipeline::HostTimes& h, double seconds);
nlohmann::json to_json(const pipeline::HostTimes& h);

// One timed inference (milliseconds). Fields a backend cannot measure stay 0.
struct Iteration {
  double h2d = 0, compute = 0, d2h = 0, latency = 0, enqueue = 0;
};

struct BenchResult {
  std::string backend, device, model, precision;
  int64_t batch = 1;
  int streams = 1;
  bool cuda_graph = false, data_transfers = true;
  double wall_s = 0;             // measured phase, all streams together
  size_t inferences = 0;
  std::vector<Iteration> iterations;
  double flops_per_inference = 0;  // 2 x MACs of one batch
  double peak_tflops = 0;          // the device's peak for the precision (0: unknown)
  std::string peak_basis;          // how the peak was computed
  double power_w_mean = -1, power_w_max = -1, util_pct_mean = -1;  // NVML (-1: n/a)
  std::vector<std::string> warnings;
  std::vector<std::pair<std::string, double>> layer_profile;  // name, mean ms (--dump-profile)

  double throughput() const { return wall_s > 0 ? static_cast<double>(inferences) / wall_s : 0; }
};

// The human-readable report (stdout) and the machine one (--json).
void print_report(const BenchResult& r);
nlohmann::json to_json(const BenchResult& r);
// Adds trtexec's stability warnings: high coefficient of variation, enqueue-bound runs.
void add_warnings(BenchResult& r);

}  // namespace kestrel::cli
