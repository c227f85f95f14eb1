// The CUDA backend's one dispatch table: op name -> layer factory and the access traits the builder's
// planner needs (which tensors must be channels-last or dense, which may be strided views).
#include <map>

#include "backend/cuda/layers.h"

namespace kestrel::cuda {

namespace {

using Factory = std::unique_ptr<Layer> (*)(const LayerSpec&);

struct Row {
  Factory make;
  OpTraits traits;
};

constexpr Access kAny = Access::Any;
constexpr Access kCL = Access::ChannelsLast;
constexpr Access kDense = Access::Dense;

const std::map<std::string, Row>& table() {
  static const std::map<std::string, Row> t = [] {
    std::map<std::string, Row> m;
    const OpTraits any{true, false, {kAny}, {kAny}};
    for (const char* op : {"Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Erf", "Exp", "Log", "Sqrt",
                           "Reciprocal", "Floor", "Ceil", "Round", "Neg", "Abs", "Not", "Clip", "Cast", "Add", "Sub", "Mul",
                           "Div", "Pow", "Equal", "Less", "Greater", "Min", "Max", "Sum", "Where"})
      m[op] = {make_elementwise, any};
    for (const char* op : {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "kestrel.Convert", "Transpose", "Slice",
                           "Split", "Concat", "Expand"})
      m[op] = {make_copy, any};
    m["Tile"] = {make_tile, any};
    m["Pad"] = {make_pad, any};
    m["Gather"] = {make_gather, {true, false, {kDense, kDense}, {kAny}}};
    const OpTraits conv{true, true, {kCL, kDense, kDense, kCL}, {kCL}};
    m["Conv"] = {make_conv, conv};
    m["kestrel.Conv"] = {make_conv, conv};
    // A first convolution with few input channels reads the network input as it is (no conversion).
    m["kestrel.ConvStem"] = {make_conv, {true, true, {kAny, kDense, kDense, kCL}, {kCL}}};
    // INT8 (Q/DQ graphs): X int8 channels-last, W / Scale / B dense, R fp16 channels-last; the
    // quantization of a float activation into that int8 form reads any layout.
    m["kestrel.ConvInt8"] = {make_conv_int8, {true, true, {kCL, kDense, kDense, kDense, kCL}, {kCL}}};
    m["kestrel.QuantizeInt8"] = {make_quantize_int8, {true, true, {kAny}, {kCL}}};
    // The first convolution reads the float32 image as it is and quantizes it itself.
    m["kestrel.ConvInt8Stem"] = {make_conv_int8, {true, true, {kAny, kDense, kDense, kDense}, {kCL}}};
    m["ConvTranspose"] = {make_conv_transpose, {true, false, {kAny, kDense, kDense}, {kAny}}};
    const OpTraits nhwc{true, true, {kCL}, {kCL}};
    for (const char* op : {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"}) m[op] = {make_pool, nhwc};
    m["kestrel.SPPF"] = {make_sppf, nhwc};
    m["kestrel.Attention"] = {make_attention, nhwc};
    m["Resize"] = {make_resize, nhwc};
    m["Softmax"] = {make_softmax, {true, false, {kDense}, {kDense}}};
    m["MatMul"] = {make_matmul, {true, false, {kDense}, {kDense}}};
    m["Gemm"] = {make_matmul, {true, false, {kDense}, {kDense}}};
    for (const char* op : {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum"}) m[op] = {make_reduce, any};
    m["kestrel.DetectV8"] = {make_detect, {true, false, {kAny}, {kDense}}};
    m["kestrel.DetectV5"] = {make_detect, {true, false, {kAny}, {kDense}}};
    return m;
  }();
  return t;
}

}  // namespace

void Layer::set_tactic(const std::string& tactic, Handles&) {
  KESTREL_CHECK(tactic == "default", "unknown tactic '", tactic, "' for ", spec_.op);
  tactic_ = tactic;
}

OpTraits op_traits(const std::string& op) {
  auto it = table().find(op);
  return it == table().end() ? OpTraits{} : it->second.traits;
}

std::vector<std::string> gpu_ops() {
  std::vector<std::string> v;
  for (auto& [k, r] : table()) v.push_back(k);
  return v;
}

std::unique_ptr<Layer> create_layer(const LayerSpec& spec) {
  auto it = table().find(spec.op);
  KESTREL_CHECK(it != table().end(), "the CUDA backend has no kernel for '", spec.op, "' (node '", spec.name, "')");
  try {
    return it->second.make(spec);
  } catch (const Error& e) {
    fail(spec.op, " node '", spec.name, "': ", e.what());
  }
}

}  // namespace kestrel::cuda
