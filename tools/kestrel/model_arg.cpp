#include "model_arg.h"

#include "kestrel/zoo.h"

namespace kestrel::cli {
Graph load_graph(const std::string& spec, int64_t batch, int64_t imgsz) {
  LoadOptions o;
  o.batch = batch;
  o.imgsz = imgsz;
  return load_model(spec, o);
}
}  // namespace kestrel::cli
