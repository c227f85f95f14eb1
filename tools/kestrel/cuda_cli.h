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

// The library's open_cuda_engine (kestrel/cuda_model.h) with the CLI's options: an .engine file is
// loaded; anything else is built for this GPU in memory, using $KESTREL_TIMING_CACHE when set.
std::unique_ptr<Engine> cuda_engine_for(const EngineSpec& spec);
// `kestrel run MODEL_OR_ENGINE --backend cuda`.
int run_cuda(const std::string& model, const std::string& input, const std::string& output, int64_t batch, int64_t imgsz);
// `kestrel inspect FILE.engine`: header, layers with tactics and fusions, memory.
int inspect_engine(const std::string& path, bool json);

}  // namespace kestrel::cli
