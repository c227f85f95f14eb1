#pragma once
// The one place that lists the operators Kestrel understands. Each entry knows how to infer its
// outputs' shapes and dtypes and how many FLOPs it costs; backends keep their own kernel tables
// keyed by the same names (src/backend/cpu/kernel_table.cpp, src/backend/cuda/...).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kestrel/graph.h"

namespace kestrel {

// What shape inference may look at for one node.
class InferContext {
 public:
  // Every supported op's first output is required (kernels write it unconditionally): a node without
  // it is refused here, where both shape inference and constant folding start.
  InferContext(Graph& g, const Node& n) : g_(g), n_(n) {
    if (n.outputs.empty() || n.outputs[0].empty()) error("has no output");
  }
  const Node& node() const { return n_; }
  const Attributes& attrs() const { return n_.attrs; }
  size_t num_inputs() const { return n_.inputs.size(); }
  bool has_input(size_t i) const { return i < n_.inputs.size() && !n_.inputs[i].empty(); }
  const Value& input(size_t i) const;
  const Shape& shape(size_t i) const { return input(i).shape; }
  DType dtype(size_t i) const { return input(i).dtype; }
  // The constant behind input i; throws naming the node when it is not constant (a dynamic shape).
  const HostTensor& constant(size_t i) const;
  bool is_constant(size_t i) const { return has_input(i) && input(i).is_constant(); }
  size_t num_outputs() const { return n_.outputs.size(); }
  void set_output(size_t i, DType dtype, Shape shape);
  [[noreturn]] void error(const std::string& msg) const;

 private:
  Graph& g_;
  const Node& n_;
};

using InferFn = void (*)(InferContext&);
using FlopsFn = int64_t (*)(const Graph&, const Node&);

struct OpInfo {
  std::string_view name;
  InferFn infer;
  FlopsFn flops;  // nullptr: counted as zero (data movement, elementwise)
};

const OpInfo* find_op(std::string_view name);
std::vector<std::string> supported_ops();
// Sum of 2 x multiply-accumulates of the node (the convention of Ultralytics' GFLOPs figures).
int64_t node_flops(const Graph& g, const Node& n);

// Helpers shared by shape inference and kernels, so both agree on the arithmetic.
int64_t normalize_axis(int64_t axis, int64_t rank, const Node& n);
Shape broadcast_shapes(const Shape& a, const Shape& b, const Node& n);

struct PoolGeometry {
  std::vector<int64_t> kernel, strides, dilations, pads;  // pads: begins then ends
  Shape out_spatial;
};
// Conv / pooling window geometry (auto_pad resolved to explicit pads, ceil_mode applied).
PoolGeometry window_geometry(const Node& n, const Shape& in_spatial, const std::vector<int64_t>& kernel,
                             bool ceil_mode);

// Slice parameters resolved against a concrete input shape (ONNX clamping rules).
struct SliceParams {
  std::vector<int64_t> starts, steps;  // per input dim
  Shape out;
};
SliceParams resolve_slice(const Shape& in, const std::vector<int64_t>& starts, const std::vector<int64_t>& ends,
                          const std::vector<int64_t>& axes, const std::vector<int64_t>& steps, const Node& n);

// ONNX TensorProto element type code -> DType (Cast "to", Constant tensors).
DType dtype_from_onnx(int64_t onnx_type, const Node& n);

// Axes of Unsqueeze/Squeeze/Reduce*/Split given by attribute (old opsets) or by constant input.
std::vector<int64_t> axes_of(InferContext& c, size_t input_index, const char* attr);

}  // namespace kestrel
