#include "engine_arg.h"

#include <cstdlib>

namespace kestrel::cli {

CLI::Option* add_backend_option(CLI::App* app, std::string& backend) {
  backend = "auto";
  return app->add_option("--backend", backend, "auto (cuda when a GPU is present, cpu otherwise), cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
}

void add_precision_flags(CLI::App* app, std::string& precision) {
  precision = "fp32";
  CLI::Option* fp16 = app->add_flag("--fp16{fp16}", precision, "FP16 engine (cuda; auto picks cuda when a GPU is present)");
  CLI::Option* int8 = app->add_flag("--int8{int8}", precision,
                                    "INT8 engine (cuda; cpu: its exact simulation), calibrated with --calib or from a "
                                    "Q/DQ model");
  fp16->excludes(int8);
}

RuntimeConfig runtime_config() {
  RuntimeConfig c;
  // KESTREL_CUDA_SYNC=1 pins an asynchronous CUDA fault on the layer that caused it.
  if (const char* e = std::getenv("KESTREL_CUDA_SYNC"); e && std::string(e) == "1") c.sync_each_layer = true;
  return c;
}

ModelOptions model_options(const EngineSpec& spec) {
  ModelOptions o;
  o.backend = parse_backend(spec.backend);
  o.precision = spec.precision;
  o.batch = spec.batch;
  o.imgsz = spec.imgsz;
  if (spec.int8) o.int8 = *spec.int8;
  if (const char* c = std::getenv("KESTREL_TIMING_CACHE"); c && *c) o.timing_cache = c;
  o.runtime = runtime_config();
  o.verbose = true;
  return o;
}

Backend resolve_backend(const EngineSpec& spec) {
  const bool engine_file = is_engine_file(spec.model);
  const Backend requested = parse_backend(spec.backend);
  // An explicit cpu choice never initialises CUDA.
  const BackendAvailability none{};
  return choose_backend(spec.model, engine_file, requested, spec.precision,
                        requested == Backend::Cpu && !engine_file ? none : backend_availability());
}

std::unique_ptr<InferenceEngine> open_engine(const EngineSpec& spec) { return open_model(spec.model, model_options(spec)); }

}  // namespace kestrel::cli
