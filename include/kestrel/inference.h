#pragma once
// One interface for "run this detector on a batch", implemented by the CPU reference backend and by
// CUDA engines, so validation, prediction, compare and bench share one pipeline whatever the backend.
#include <map>
#include <memory>
#include <string>

#include "kestrel/graph.h"

namespace kestrel {

class InferenceEngine {
 public:
  virtual ~InferenceEngine() = default;
  // [B, 3, S, S] float32: the batch every infer() call must fill.
  virtual Shape input_shape() const = 0;
  virtual Shape output_shape() const = 0;
  // Runs one batch; the returned tensor is float32 with output_shape().
  virtual HostTensor infer(const HostTensor& input) = 0;
  // "cpu fp32", "cuda fp16 (NVIDIA H200)", ...
  virtual std::string description() const = 0;
  // Model metadata (Ultralytics names/stride/imgsz) when known.
  virtual const std::map<std::string, std::string>& metadata() const = 0;
};

std::unique_ptr<InferenceEngine> make_cpu_engine(Graph graph);

}  // namespace kestrel
