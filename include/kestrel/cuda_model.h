#pragma once
// The CUDA engine for a model (CUDA builds only): for the verbs and programs that drive an Engine
// directly (bench, compare). Everything else opens models through open_model (kestrel/model.h).
#include <memory>
#include <string>

#include "kestrel/model.h"
#include "kestrel/runtime.h"

namespace kestrel {

// An engine file is loaded (options.batch, when set, must be its batch); an ONNX path or zoo name is
// built for this GPU in memory with options.precision (int8: a Q/DQ ONNX with its own scales, anything
// else calibrated with options.int8) and options.timing_cache.
std::unique_ptr<Engine> open_cuda_engine(const std::string& model, const ModelOptions& options);

}  // namespace kestrel
