// libFuzzer target for the calibration cache reader: any text must parse or raise kestrel::Error, and
// every scale it returns must be a positive normal float (what the INT8 engines may divide by).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "kestrel/quant.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const kestrel::quant::CacheFile c =
        kestrel::quant::parse_cache(std::string(reinterpret_cast<const char*>(data), size), "<fuzz>");
    for (const auto& [name, s] : c.scales)
      if (!(std::isnormal(s) && s > 0)) std::abort();  // a scale the reader should have refused
  } catch (const kestrel::Error&) {
  }
  return 0;
}
