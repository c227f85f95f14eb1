#pragma once
// The timing cache: chosen tactic and its time per (device, layer signature), kept in a text file so
// a rebuild on the same GPU and libraries skips the timing runs. The signature the tuner passes ends
// with the layer's candidate tactics: a choice stands only against the tactics it was measured among.
// The key the builder passes (bld::timing_cache_key: GPU name, compute capability, CUDA / cuDNN /
// Kestrel versions, the timing method, the build ID of the kernels' module) is part of every entry, so
// one file can serve several GPUs and a rebuilt or upgraded library simply misses.
#include <map>
#include <optional>
#include <string>

namespace kestrel::bld {

class TimingCache {
 public:
  struct Entry {
    std::string tactic;
    float time_ms = 0;
  };
  void load(const std::string& path);  // a missing file is an empty cache; bad lines are skipped
  void save(const std::string& path) const;
  std::optional<Entry> get(const std::string& device_key, const std::string& signature) const;
  void put(const std::string& device_key, const std::string& signature, Entry e);
  size_t size() const { return entries_.size(); }

 private:
  std::map<std::string, Entry> entries_;  // key: device_key + '\t' + signature
};

}  // namespace kestrel::bld
