#pragma once
// MODEL + --backend (+ precision, batch, imgsz, INT8 calibration) for the verbs that run detectors (val,
// predict, compare, bench, run): the CLI's spelling of kestrel::open_model (kestrel/model.h).
#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "int8_args.h"
#include "kestrel/inference.h"
#include "kestrel/model.h"

namespace kestrel::cli {

// --backend auto|cpu|cuda, default auto (CUDA when a GPU is present): one definition for every verb.
CLI::Option* add_backend_option(CLI::App* app, std::string& backend);

// --fp16 / --int8 (exclusive) setting `precision` (default fp32): one definition for every verb that runs
// an engine it builds (val, predict, bench).
void add_precision_flags(CLI::App* app, std::string& precision);

struct EngineSpec {
  std::string model;               // ONNX path, built-in name, or an engine file (selects CUDA)
  std::string backend = "auto";    // auto | cpu | cuda
  std::string precision = "fp32";  // fp32 | fp16 (cuda) | int8 (cuda; cpu: the INT8 simulation)
  int64_t batch = 0, imgsz = 0;
  const Int8Args* int8 = nullptr;  // calibration for int8 (a Q/DQ model needs none)
};

// The library's options for `spec`, with the CLI's conveniences: $KESTREL_TIMING_CACHE as the timing
// cache, calibration and precision summaries on stdout.
ModelOptions model_options(const EngineSpec& spec);
// The environment's execution context settings (KESTREL_CUDA_SYNC=1: synchronize after every layer).
RuntimeConfig runtime_config();

// The backend `spec` runs on (engine files: cuda; auto: cuda when a GPU is usable).
Backend resolve_backend(const EngineSpec& spec);

std::unique_ptr<InferenceEngine> open_engine(const EngineSpec& spec);

}  // namespace kestrel::cli
