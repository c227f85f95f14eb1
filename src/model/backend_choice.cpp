// Which backend a model runs on: the one rule every verb, the Detector and the Python package share.
#include "kestrel/model.h"
#include "model_internal.h"
#include "util/file_io.h"

namespace kestrel {

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::Auto: return "auto";
    case Backend::Cpu: return "cpu";
    case Backend::Cuda: return "cuda";
  }
  return "?";
}

Backend parse_backend(const std::string& name) {
  if (name == "auto") return Backend::Auto;
  if (name == "cpu") return Backend::Cpu;
  if (name == "cuda") return Backend::Cuda;
  throw UsageError("unknown backend '" + name + "' (auto, cpu or cuda)");
}

const BackendAvailability& backend_availability() {
  static const BackendAvailability a = [] {
    BackendAvailability r;
#ifdef KESTREL_HAS_CUDA
    r.cuda_built = true;
    r.gpu = detail::cuda_device_usable(&r.why_not);
#else
    r.why_not = "this build has no CUDA backend (no CUDA compiler when it was configured)";
#endif
    return r;
  }();
  return a;
}

bool is_engine_file(const std::string& path) { return util::is_engine_file(path); }

Backend choose_backend(const std::string& model, bool engine_file, Backend requested, const std::string& precision,
                       const BackendAvailability& available) {
  if (precision != "fp32" && precision != "fp16" && precision != "int8")
    throw UsageError("unknown precision '" + precision + "' (fp32, fp16 or int8)");
  if (engine_file) {
    if (requested == Backend::Cpu)
      throw UsageError(model + " is an engine file: it runs on the CUDA backend only (leave out --backend cpu, or "
                       "pass the ONNX model)");
    if (!available.cuda_built) throw UsageError(model + " is an engine file, which needs the CUDA backend: " + available.why_not);
    if (!available.gpu) throw UsageError(model + " is an engine file, which needs a GPU: " + available.why_not);
    return Backend::Cuda;
  }
  if (requested == Backend::Cuda) {
    if (!available.cuda_built) throw UsageError("--backend cuda is not available: " + available.why_not);
    if (!available.gpu) throw UsageError("--backend cuda needs a GPU: " + available.why_not);
    return Backend::Cuda;
  }
  if (requested == Backend::Auto && available.gpu) return Backend::Cuda;
  // The CPU reference backend: fp32, and int8 as the exact simulation of the GPU's INT8 engine.
  if (precision == "fp16") {
    if (requested == Backend::Cpu)
      throw UsageError("the cpu backend runs fp32, or int8 as a simulation (asked for fp16)");
    throw UsageError("fp16 runs on the CUDA backend, and there is none here (" + available.why_not +
                     "); leave out --fp16 to run fp32 on the CPU");
  }
  return Backend::Cpu;
}

}  // namespace kestrel
