#include "backend/cuda/cudnn_plan_cache.h"

#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <system_error>

#include <unistd.h>

#include "runtime/plan.h"
#include "util/file_io.h"

namespace kestrel::cuda {

namespace {

std::mutex folders_mu;
std::map<cudnnHandle_t, std::string>& folders() {  // per handle, where one was set
  static std::map<cudnnHandle_t, std::string> m;
  return m;
}

std::filesystem::path default_dir() {
  if (const char* e = std::getenv("KESTREL_CUDNN_CACHE"); e && *e) {
    if (std::string(e) == "off") return {};
    return e;
  }
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::filesystem::path(x) / "kestrel" / "cudnn";
  if (const char* h = std::getenv("HOME"); h && *h) return std::filesystem::path(h) / ".cache" / "kestrel" / "cudnn";
  return {};
}

std::filesystem::path cache_dir(cudnnHandle_t h) {
  {
    std::lock_guard<std::mutex> lock(folders_mu);
    auto it = folders().find(h);
    if (it != folders().end()) return it->second == "off" ? std::filesystem::path() : std::filesystem::path(it->second);
  }
  return default_dir();
}

// What makes a compiled plan valid on the current device: the cuDNN release and the GPU. Queried once
// per device (cudaGetDeviceProperties is slow, and an engine load asks for ~60 plans).
std::string device_prefix() {
  static std::mutex mu;
  static std::map<int, std::string> prefix;
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return {};
  std::lock_guard<std::mutex> lock(mu);
  auto it = prefix.find(dev);
  if (it == prefix.end()) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, dev) != cudaSuccess) return {};
    std::ostringstream os;
    os << "cudnn " << cudnnGetVersion() << " | " << prop.name << " sm_" << prop.major << prop.minor << " | ";
    it = prefix.emplace(dev, os.str()).first;
  }
  return it->second;
}

std::string full_key(const std::string& key) {
  const std::string p = device_prefix();
  return p.empty() ? p : p + key;
}

std::filesystem::path entry_path(const std::filesystem::path& dir, const std::string& k) {
  char name[32];
  std::snprintf(name, sizeof(name), "%016llx.json", static_cast<unsigned long long>(rt::fnv1a64(k.data(), k.size())));
  return dir / name;
}

}  // namespace

void set_cudnn_plan_cache(cudnnHandle_t h, const std::string& folder) {
  std::lock_guard<std::mutex> lock(folders_mu);
  if (folder.empty()) folders().erase(h);
  else folders()[h] = folder;
}

bool cudnn_plan_cache_on(cudnnHandle_t h) { return !cache_dir(h).empty(); }

std::optional<std::string> load_cudnn_plan(cudnnHandle_t h, const std::string& key) {
  const std::filesystem::path dir = cache_dir(h);
  const std::string k = full_key(key);
  if (dir.empty() || k.empty()) return std::nullopt;
  std::ifstream in(entry_path(dir, k), std::ios::binary);
  if (!in) return std::nullopt;
  // First line: the full key (a hash collision or another release reads as a miss); then the JSON.
  std::string stored_key;
  if (!std::getline(in, stored_key) || stored_key != k) return std::nullopt;
  std::ostringstream json;
  json << in.rdbuf();
  if (json.str().empty()) return std::nullopt;
  return json.str();
}

void store_cudnn_plan(cudnnHandle_t h, const std::string& key, const std::string& json) {
  const std::filesystem::path dir = cache_dir(h);
  const std::string k = full_key(key);
  if (dir.empty() || k.empty() || json.empty() || k.find('\n') != std::string::npos) return;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return;
  const std::filesystem::path path = entry_path(dir, k);
  // util::write_file writes beside, syncs and renames: a concurrent reader (or a crash) sees the old entry
  // or the whole new one. The cache only saves time, so a failed write is left at that.
  try {
    util::write_file(path.string(), k + '\n' + json);
  } catch (const Error&) {
  }
}

}  // namespace kestrel::cuda
