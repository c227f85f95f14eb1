#include "engine_arg.h"

#include "model_arg.h"
#ifdef KESTREL_HAS_CUDA
#include "cuda_cli.h"
#endif

namespace kestrel::cli {

std::unique_ptr<InferenceEngine> open_engine(const EngineSpec& spec) {
  if (spec.backend == "cpu") {
    if (spec.precision == "int8") {
      // The CPU simulation of the INT8 engine: the GPU's integer arithmetic, bit for bit.
      const Int8Args none;
      return quant::make_simulated_engine(int8_model(spec.model, spec.batch, spec.imgsz, spec.int8 ? *spec.int8 : none).qdq);
    }
    if (spec.precision != "fp32")
      throw UsageError("the cpu backend runs fp32, or int8 as a simulation (asked for " + spec.precision + ")");
    return make_cpu_engine(load_graph(spec.model, spec.batch, spec.imgsz));
  }
#ifdef KESTREL_HAS_CUDA
  if (spec.backend == "cuda") return open_cuda_engine(spec);
#endif
  throw UsageError("--backend " + spec.backend + " is not available in this build (available: cpu)");
}

}  // namespace kestrel::cli
