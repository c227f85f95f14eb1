#pragma once
// Turns MODEL + --backend (+ precision, batch, imgsz) into an InferenceEngine for the verbs that run
// detectors (val, predict, compare, bench).
#include <memory>
#include <string>

#include "int8_args.h"
#include "kestrel/inference.h"

namespace kestrel::cli {

struct EngineSpec {
  std::string model;           // ONNX path, built-in name, or (CUDA) an .engine file
  std::string backend = "cpu";  // cpu | cuda
  std::string precision = "fp32";  // fp32 | fp16 (cuda) | int8 (cuda; cpu: the INT8 simulation)
  int64_t batch = 0, imgsz = 0;
  const Int8Args* int8 = nullptr;  // calibration for int8 (a Q/DQ model needs none)
};

std::unique_ptr<InferenceEngine> open_engine(const EngineSpec& spec);

}  // namespace kestrel::cli
