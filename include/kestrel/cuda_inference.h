#pragma once
// The CUDA engine behind the InferenceEngine interface (val, predict, compare, bench): the network on
// its execution context, with letterbox, decode and NMS on the GPU through image_detector().
#include <memory>

#include "kestrel/inference.h"
#include "kestrel/runtime.h"

namespace kestrel {

std::unique_ptr<InferenceEngine> make_cuda_inference(std::unique_ptr<Engine> engine);

}  // namespace kestrel
