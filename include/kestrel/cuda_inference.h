#pragma once
// The CUDA engine behind the InferenceEngine interface (val, predict, compare, bench): the network on
// its execution context, with letterbox, decode and NMS on the GPU through image_detector().
#include <memory>

#include "kestrel/inference.h"
#include "kestrel/runtime.h"

namespace kestrel {

// `batch`: the batch input_shape() reports and the pipeline fills (0: the engine's max_batch); an
// engine with a batch profile runs any batch of its profile, fewer images as they are.
std::unique_ptr<InferenceEngine> make_cuda_inference(std::unique_ptr<Engine> engine, int64_t batch = 0,
                                                     const RuntimeConfig& config = {});

}  // namespace kestrel
