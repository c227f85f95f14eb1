// libFuzzer target for the engine file reader (rt::deserialize_engine, then engine_info as `inspect` and the
// runtime use it): any bytes must load or raise kestrel::Error, never crash, hang or trip a sanitizer.
// Each input runs twice: as it is, and with the header's size and the trailing checksum made to
// match, so that mutations reach the body parser instead of stopping at the checksum.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "runtime/plan.h"

namespace {
void load(const uint8_t* data, size_t size) {
  try {
    const kestrel::rt::EngineFile file = kestrel::rt::deserialize_engine(data, size);
    (void)kestrel::rt::engine_info(file);
  } catch (const kestrel::Error&) {
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  load(data, size);
  if (size < 36) return 0;
  std::vector<uint8_t> fixed(data, data + size);
  std::memcpy(fixed.data(), kestrel::rt::kEngineMagic, 8);
  const uint32_t version = kestrel::rt::kFormatVersion;
  std::memcpy(fixed.data() + kestrel::rt::kOffsetFormatVersion, &version, 4);
  const uint64_t total = size;
  std::memcpy(fixed.data() + kestrel::rt::kOffsetFileSize, &total, 8);
  const uint64_t sum = kestrel::rt::fnv1a64(fixed.data(), size - 8);
  std::memcpy(fixed.data() + size - 8, &sum, 8);
  load(fixed.data(), fixed.size());
  return 0;
}
