#pragma once
// FNV-1a 64: the hash of calibration-cache keys (model, image set). Not cryptographic: it only has to
// tell "another model / other images" apart from "the same ones".
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace kestrel::quant::detail {

class Fnv1a {
 public:
  void bytes(const void* data, size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < size; ++i) h_ = (h_ ^ p[i]) * 1099511628211ull;
  }
  // Strings are length-prefixed so that ("ab", "c") and ("a", "bc") differ.
  void str(std::string_view s) {
    u64(s.size());
    bytes(s.data(), s.size());
  }
  void u64(uint64_t v) { bytes(&v, sizeof v); }
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h_));
    return buf;
  }

 private:
  uint64_t h_ = 1469598103934665603ull;
};

}  // namespace kestrel::quant::detail
