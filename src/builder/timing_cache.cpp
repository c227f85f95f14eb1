#include "builder/timing_cache.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kestrel/error.h"
#include "util/file_io.h"

namespace kestrel::bld {

namespace {
constexpr const char* kMagic = "kestrel-timing-cache 1";
}

void TimingCache::load(const std::string& path) {
  std::ifstream f(path);
  if (!f) return;
  std::string line;
  if (!std::getline(f, line) || line != kMagic) return;  // another format: start afresh
  while (std::getline(f, line)) {
    // device_key \t signature \t tactic \t time_ms
    const size_t a = line.find('\t'), b = a == std::string::npos ? a : line.find('\t', a + 1),
                 c = b == std::string::npos ? b : line.find('\t', b + 1);
    if (c == std::string::npos) continue;
    Entry e;
    e.tactic = line.substr(b + 1, c - b - 1);
    try {
      e.time_ms = std::stof(line.substr(c + 1));
    } catch (...) {
      continue;
    }
    entries_[line.substr(0, b)] = e;
  }
}

void TimingCache::save(const std::string& path) const {
  std::ostringstream f;
  f << kMagic << "\n";
  for (auto& [k, e] : entries_) f << k << '\t' << e.tactic << '\t' << e.time_ms << '\n';
  util::write_file(path, f.str());
}

std::optional<TimingCache::Entry> TimingCache::get(const std::string& device_key, const std::string& signature) const {
  auto it = entries_.find(device_key + '\t' + signature);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

void TimingCache::put(const std::string& device_key, const std::string& signature, Entry e) {
  entries_[device_key + '\t' + signature] = std::move(e);
}

}  // namespace kestrel::bld
