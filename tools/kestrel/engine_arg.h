#pragma once
// Turns MODEL + --backend (+ precision, batch, imgsz) into an InferenceEngine for the verbs that run
// detectors (val, predict, compare, bench).
#include <memory>
#include <string>

#include "kestrel/inference.h"

namespace kestrel::cli {

struct EngineSpec {
  std::string model;           // ONNX path, built-in name, or (CUDA) an .engine file
  std::string backend = "cpu";  // cpu | cuda
  std::string precision = "fp32";
  int64_t batch = 0, imgsz = 0;
};

std::unique_ptr<InferenceEngine> open_engine(const EngineSpec& spec);

}  // namespace kestrel::cli
