#include "nvml_sampler.h"

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <numeric>

namespace kestrel::cli {

namespace {
struct NvmlUtilization {
  unsigned gpu, memory;  // nvmlUtilization_t
};
}  // namespace

NvmlSampler::NvmlSampler(int device, int period_ms) : period_ms_(period_ms) {
  lib_ = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib_) return;
  auto init = reinterpret_cast<int (*)()>(dlsym(lib_, "nvmlInit_v2"));
  auto by_index = reinterpret_cast<int (*)(unsigned, void**)>(dlsym(lib_, "nvmlDeviceGetHandleByIndex_v2"));
  get_power_ = reinterpret_cast<int (*)(void*, unsigned*)>(dlsym(lib_, "nvmlDeviceGetPowerUsage"));
  get_util_ = reinterpret_cast<int (*)(void*, void*)>(dlsym(lib_, "nvmlDeviceGetUtilizationRates"));
  shutdown_ = reinterpret_cast<int (*)()>(dlsym(lib_, "nvmlShutdown"));
  if (!init || !by_index || !get_power_ || !get_util_ || !shutdown_) return;
  if (init() != 0) return;
  if (by_index(static_cast<unsigned>(device), &device_) != 0) {
    shutdown_();
    return;
  }
  available_ = true;
}

NvmlSampler::~NvmlSampler() {
  stop();
  if (available_) shutdown_();
  if (lib_) dlclose(lib_);
}

void NvmlSampler::start() {
  if (!available_ || running_) return;
  running_ = true;
  thread_ = std::thread([this] { loop(); });
}

void NvmlSampler::stop() {
  if (!running_) return;
  running_ = false;
  thread_.join();
}

void NvmlSampler::loop() {
  while (running_) {
    unsigned mw = 0;
    NvmlUtilization u{};
    if (get_power_(device_, &mw) == 0) power_w_.push_back(mw / 1000.0);
    if (get_util_(device_, &u) == 0) util_pct_.push_back(u.gpu);
    std::this_thread::sleep_for(std::chrono::milliseconds(period_ms_));
  }
}

double NvmlSampler::mean_power_w() const {
  return power_w_.empty() ? -1 : std::accumulate(power_w_.begin(), power_w_.end(), 0.0) / static_cast<double>(power_w_.size());
}
double NvmlSampler::max_power_w() const {
  return power_w_.empty() ? -1 : *std::max_element(power_w_.begin(), power_w_.end());
}
double NvmlSampler::mean_utilization_pct() const {
  return util_pct_.empty() ? -1 : std::accumulate(util_pct_.begin(), util_pct_.end(), 0.0) / static_cast<double>(util_pct_.size());
}

}  // namespace kestrel::cli
