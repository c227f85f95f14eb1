// The CPU backend's dispatch table: op name -> kernel. Every op in src/ir/op_registry.cpp has a row
// (tests/cpu checks that).
#include <map>

#include "backend/cpu/kernels.h"

namespace kestrel::cpu {

namespace {
const std::map<std::string, Kernel>& table() {
  static const std::map<std::string, Kernel> t = {
      {"Abs", k_abs}, {"Add", k_add}, {"AveragePool", k_average_pool}, {"BatchNormalization", k_batch_norm},
      {"Cast", k_cast}, {"Ceil", k_ceil}, {"Clip", k_clip}, {"Concat", k_concat}, {"Constant", k_constant},
      {"ConstantOfShape", k_constant_of_shape}, {"Conv", k_conv}, {"ConvTranspose", k_conv_transpose},
      {"DequantizeLinear", k_dequantize}, {"Div", k_div}, {"Equal", k_equal}, {"Erf", k_erf}, {"Exp", k_exp},
      {"Expand", k_expand}, {"Flatten", k_copy}, {"Floor", k_floor}, {"Gather", k_gather}, {"Gemm", k_gemm},
      {"GlobalAveragePool", k_global_pool}, {"GlobalMaxPool", k_global_pool}, {"Greater", k_greater},
      {"HardSigmoid", k_hard_sigmoid}, {"HardSwish", k_hard_swish}, {"Identity", k_copy},
      {"LeakyRelu", k_leaky_relu}, {"Less", k_less}, {"Log", k_log}, {"MatMul", k_matmul}, {"Max", k_max},
      {"MaxPool", k_max_pool}, {"Min", k_min}, {"Mul", k_mul}, {"Neg", k_neg}, {"Not", k_not}, {"Pad", k_pad},
      {"Pow", k_pow}, {"QuantizeLinear", k_quantize}, {"Range", k_range}, {"Reciprocal", k_reciprocal},
      {"ReduceMax", k_reduce}, {"ReduceMean", k_reduce}, {"ReduceMin", k_reduce}, {"ReduceSum", k_reduce},
      {"Relu", k_relu}, {"Reshape", k_copy}, {"Resize", k_resize}, {"Round", k_round}, {"Shape", k_shape},
      {"Sigmoid", k_sigmoid}, {"Slice", k_slice}, {"Softmax", k_softmax}, {"Split", k_split}, {"Sqrt", k_sqrt},
      {"Squeeze", k_copy}, {"Sub", k_sub}, {"Sum", k_sum}, {"Tanh", k_tanh}, {"Tile", k_tile},
      {"Transpose", k_transpose}, {"Unsqueeze", k_copy}, {"Where", k_where},
      // Kestrel's fused ops (written by the optimizer, src/passes/).
      {"kestrel.Conv", k_fused_conv}, {"kestrel.DetectV5", k_detect_v5}, {"kestrel.DetectV8", k_detect_v8},
      {"kestrel.SPPF", k_fused_sppf}, {"kestrel.Attention", k_fused_attention},
  };
  return t;
}
}  // namespace

Kernel find_kernel(const std::string& op) {
  auto it = table().find(op);
  return it == table().end() ? nullptr : it->second;
}

std::vector<std::string> kernel_names() {
  std::vector<std::string> names;
  for (auto& [k, v] : table()) names.push_back(k);
  return names;
}

std::vector<HostTensor> eval_node(const Graph& g, const Node& n, const std::vector<const HostTensor*>& inputs) {
  Kernel k = find_kernel(n.op);
  KESTREL_CHECK(k, "the CPU backend has no kernel for '", n.op, "' (node '", n.name, "')");
  std::vector<HostTensor> outs;
  outs.reserve(n.outputs.size());
  for (const std::string& o : n.outputs) {
    if (o.empty()) {
      outs.emplace_back();
      continue;
    }
    const Value& v = g.value(o);
    KESTREL_CHECK(v.shape_known, "node '", n.name, "': output '", o, "' has no inferred shape");
    outs.emplace_back(v.dtype, v.shape);
  }
  k(n, inputs, outs);
  return outs;
}

}  // namespace kestrel::cpu
