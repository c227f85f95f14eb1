#include "engine_arg.h"

#include "model_arg.h"

namespace kestrel::cli {

std::unique_ptr<InferenceEngine> open_engine(const EngineSpec& spec) {
  if (spec.backend == "cpu") {
    if (spec.precision != "fp32")
      throw UsageError("the cpu backend runs fp32 only (asked for " + spec.precision + ")");
    return make_cpu_engine(load_graph(spec.model, spec.batch, spec.imgsz));
  }
  throw UsageError("--backend " + spec.backend + " is not available in this build (available: cpu)");
}

}  // namespace kestrel::cli
