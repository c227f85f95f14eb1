#pragma once
// Images to boxes next to a CUDA engine: the 8-bit images go up (pinned staging, one copy), the
// letterbox kernel writes the engine's input, the engine runs, the detection kernels decode and run
// NMS on the device, and only max_det x 6 floats per image come back. Stage times from CUDA events.
// One detector per execution context; not for concurrent use.
#include <memory>

#include "kestrel/inference.h"
#include "kestrel/runtime.h"

namespace kestrel::yolo {

std::unique_ptr<ImageDetector> make_cuda_detector(ExecutionContext& ctx);

}  // namespace kestrel::yolo
