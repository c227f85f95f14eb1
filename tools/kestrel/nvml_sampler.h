#pragma once
// GPU power and utilisation sampled in a background thread through NVML, loaded at run time
// (dlopen), so Kestrel neither links nor needs it: without NVML the figures are reported as n/a.
#include <atomic>
#include <thread>
#include <vector>

namespace kestrel::cli {

class NvmlSampler {
 public:
  explicit NvmlSampler(int device = 0, int period_ms = 50);
  ~NvmlSampler();
  bool available() const { return available_; }
  void start();
  void stop();
  double mean_power_w() const;
  double max_power_w() const;
  double mean_utilization_pct() const;

 private:
  void loop();
  bool available_ = false;
  void* lib_ = nullptr;
  void* device_ = nullptr;
  int period_ms_;
  std::atomic<bool> running_{false};
  std::thread thread_;
  std::vector<double> power_w_, util_pct_;
  // NVML entry points (C ABI, resolved with dlsym).
  int (*get_power_)(void*, unsigned*) = nullptr;
  int (*get_util_)(void*, void*) = nullptr;
  int (*shutdown_)() = nullptr;
};

}  // namespace kestrel::cli
