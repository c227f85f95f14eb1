#pragma once
// The CUDA engine in the CLI (compiled only with KESTREL_HAS_CUDA): opening a model or an engine file
// for run / val / predict, and printing an engine file for inspect.
#include <memory>
#include <string>

#include "engine_arg.h"
#include "kestrel/builder.h"
#include "kestrel/inference.h"
#include "kestrel/runtime.h"

namespace kestrel::cli {

// An .engine file is loaded; anything else (ONNX path, zoo name) is built for this GPU in memory,
// using $KESTREL_TIMING_CACHE as the timing cache when set.
// precision int8: a Q/DQ ONNX is built with its scales, anything else calibrated with `int8`.
std::unique_ptr<Engine> cuda_engine_for(const std::string& model, const std::string& precision, int64_t batch,
                                        int64_t imgsz, const Int8Args* int8 = nullptr);
// `kestrel run MODEL_OR_ENGINE --backend cuda`.
int run_cuda(const std::string& model, const std::string& input, const std::string& output, int64_t batch, int64_t imgsz);
// The InferenceEngine adapter for val / predict.
std::unique_ptr<InferenceEngine> open_cuda_engine(const EngineSpec& spec);
// True when a CUDA device can be used (bench_cuda.cpp).
bool gpu_available();
// `kestrel inspect FILE.engine`: header, layers with tactics and fusions, memory.
int inspect_engine(const std::string& path, bool json);

}  // namespace kestrel::cli
