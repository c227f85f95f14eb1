#include "model_arg.h"

#include "kestrel/onnx.h"

namespace kestrel::cli {
Graph load_graph(const std::string& spec, int64_t batch, int64_t imgsz) {
  ImportOptions o;
  o.batch = batch;
  o.imgsz = imgsz;
  return import_onnx(spec, o);
}
}  // namespace kestrel::cli
