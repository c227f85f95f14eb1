// MODEL + options -> an InferenceEngine on the backend choose_backend picks.
#include "kestrel/model.h"
#include "kestrel/zoo.h"
#ifdef KESTREL_HAS_CUDA
#include "kestrel/cuda_inference.h"
#include "kestrel/cuda_model.h"
#endif

namespace kestrel {

std::unique_ptr<InferenceEngine> open_model(const std::string& model, const ModelOptions& options) {
  const bool engine_file = is_engine_file(model);
  // Availability is queried only when it matters: an explicit cpu choice never initialises CUDA.
  static const BackendAvailability cpu_only{};
  const BackendAvailability& available =
      options.backend == Backend::Cpu && !engine_file ? cpu_only : backend_availability();
  const Backend backend = choose_backend(model, engine_file, options.backend, options.precision, available);
  if (backend == Backend::Cpu) {
    if (options.precision == "int8")  // the CPU simulation of the INT8 engine: the GPU's integer arithmetic, bit for bit
      return quant::make_simulated_engine(
          int8_model(model, options.batch, options.imgsz, options.int8, quant::LayerPrecision::FP16, options.verbose).qdq);
    LoadOptions lo;
    lo.batch = options.batch;
    lo.imgsz = options.imgsz;
    return make_cpu_engine(load_model(model, lo));
  }
#ifdef KESTREL_HAS_CUDA
  return make_cuda_inference(open_cuda_engine(model, options), options.batch, options.runtime);
#else
  fail("internal: the CUDA backend was chosen in a build without it");
#endif
}

}  // namespace kestrel
