// libFuzzer target for the ONNX importer: any byte string must either import or raise kestrel::Error,
// never crash, hang, leak or trip a sanitizer.
#include <cstddef>
#include <cstdint>

#include "kestrel/onnx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    kestrel::Graph g = kestrel::import_onnx_bytes(data, size, {}, "<fuzz>");
    (void)g.parameter_count();
  } catch (const kestrel::Error&) {
  }
  return 0;
}
