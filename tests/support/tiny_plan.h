#pragma once
// A one-layer engine plan (input -> Relu -> output, one weights tensor) at any batch: enough to touch
// every section of the engine file, for the file tests and the engine fuzzer's seeds.
#include <cstdint>
#include <utility>
#include <vector>

#include "runtime/plan.h"

namespace kestrel::test {

inline rt::Plan tiny_plan(int64_t batch, std::vector<uint8_t> weights = {1, 2, 3, 4}) {
  rt::Plan p;
  p.header.format_version = rt::kFormatVersion;
  p.header.cc_major = 9;
  p.header.kestrel_version = "0";
  p.header.gpu_name = "tiny";
  p.header.model_name = "tiny";
  p.header.batch = batch;
  p.header.imgsz = 8;
  p.header.metadata["names"] = "{0: 'a'}";
  rt::PlanTensor x;
  x.name = "images";
  x.shape = {batch, 3, 8, 8};
  x.strides = {192, 64, 8, 1};
  x.storage = rt::Storage::Input;
  x.slot = 0;
  rt::PlanTensor y = x;
  y.name = "output0";
  y.storage = rt::Storage::Output;
  rt::PlanTensor w;
  w.name = "w";
  w.dtype = DType::U8;
  w.shape = {static_cast<int64_t>(weights.size())};
  w.strides = {1};
  w.storage = rt::Storage::Weights;
  p.tensors = {x, y, w};
  rt::PlanLayer l;
  l.name = "relu";
  l.op = "Relu";
  l.inputs = {0};
  l.outputs = {1};
  l.tactic = "elementwise";
  p.layers = {l};
  p.inputs = {0};
  p.outputs = {1};
  p.weights = std::move(weights);
  return p;
}

}  // namespace kestrel::test
