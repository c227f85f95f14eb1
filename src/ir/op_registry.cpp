#include "ir/op_registry.h"

#include <algorithm>
#include <cmath>

#include "ir/infer_fns.h"

namespace kestrel {

const Value& InferContext::input(size_t i) const {
  if (!has_input(i)) error("missing input " + std::to_string(i));
  return g_.value(n_.inputs[i]);
}

const HostTensor& InferContext::constant(size_t i) const {
  const Value& v = input(i);
  if (!v.is_constant())
    error("input '" + v.name + "' must be a constant (data-dependent shapes are not supported)");
  return *v.constant;
}

void InferContext::set_output(size_t i, DType dtype, Shape shape) {
  if (i >= n_.outputs.size() || n_.outputs[i].empty()) return;
  // Reject negative and absurd shapes here, once, so no later arithmetic (FLOPs, byte sizes) can
  // overflow on a malformed model.
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) error("inferred a negative dimension " + shape_str(shape));
    if (d > (int64_t{1} << 32) || (d > 0 && numel > (int64_t{1} << 40) / d))
      error("inferred an implausibly large shape " + shape_str(shape));
    numel *= d;
  }
  const std::string& name = n_.outputs[i];
  Value* v = g_.find(name);
  if (!v) {
    Value nv;
    nv.name = name;
    v = &g_.add_value(std::move(nv));
  }
  v->dtype = dtype;
  v->shape = std::move(shape);
  v->shape_known = true;
}

void InferContext::error(const std::string& msg) const {
  fail(n_.op, " node '", n_.name, "': ", msg);
}

int64_t normalize_axis(int64_t axis, int64_t rank, const Node& n) {
  const int64_t a = axis < 0 ? axis + rank : axis;
  KESTREL_CHECK(a >= 0 && a < std::max<int64_t>(rank, 1), n.op, " node '", n.name, "': axis ", axis,
                " out of range for rank ", rank);
  return a;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const Node& n) {
  const size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    KESTREL_CHECK(da == db || da == 1 || db == 1, n.op, " node '", n.name, "': shapes ", shape_str(a), " and ",
                  shape_str(b), " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

PoolGeometry window_geometry(const Node& n, const Shape& in_spatial, const std::vector<int64_t>& kernel,
                             bool ceil_mode) {
  const size_t r = in_spatial.size();
  PoolGeometry g;
  g.kernel = kernel;
  KESTREL_CHECK(kernel.size() == r, n.op, " node '", n.name, "': kernel rank ", kernel.size(), " vs input spatial rank ", r);
  g.strides = n.attrs.ints("strides", std::vector<int64_t>(r, 1));
  g.dilations = n.attrs.ints("dilations", std::vector<int64_t>(r, 1));
  g.pads = n.attrs.ints("pads", std::vector<int64_t>(2 * r, 0));
  KESTREL_CHECK(g.strides.size() == r && g.dilations.size() == r && g.pads.size() == 2 * r, n.op, " node '",
                n.name, "': strides/dilations/pads do not match the spatial rank");
  const std::string auto_pad = n.attrs.s("auto_pad", "NOTSET");
  g.out_spatial.resize(r);
  for (size_t i = 0; i < r; ++i) {
    KESTREL_CHECK(g.strides[i] > 0 && g.dilations[i] > 0 && kernel[i] > 0, n.op, " node '", n.name,
                  "': non-positive kernel/stride/dilation");
    const int64_t ek = (kernel[i] - 1) * g.dilations[i] + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const int64_t out = (in_spatial[i] + g.strides[i] - 1) / g.strides[i];
      const int64_t total = std::max<int64_t>(0, (out - 1) * g.strides[i] + ek - in_spatial[i]);
      g.pads[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.pads[i + r] = total - g.pads[i];
      g.out_spatial[i] = out;
      continue;
    }
    if (auto_pad == "VALID") g.pads[i] = g.pads[i + r] = 0;
    const int64_t span = in_spatial[i] + g.pads[i] + g.pads[i + r] - ek;
    KESTREL_CHECK(span >= 0, n.op, " node '", n.name, "': window larger than padded input");
    int64_t out = ceil_mode ? (span + g.strides[i] - 1) / g.strides[i] + 1 : span / g.strides[i] + 1;
    // ONNX/PyTorch: with ceil_mode the last window must start inside the input or left padding.
    if (ceil_mode && (out - 1) * g.strides[i] >= in_spatial[i] + g.pads[i]) --out;
    g.out_spatial[i] = out;
  }
  return g;
}

SliceParams resolve_slice(const Shape& in, const std::vector<int64_t>& starts, const std::vector<int64_t>& ends,
                          const std::vector<int64_t>& axes_in, const std::vector<int64_t>& steps_in, const Node& n) {
  const int64_t r = static_cast<int64_t>(in.size());
  std::vector<int64_t> axes = axes_in;
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  std::vector<int64_t> steps = steps_in.empty() ? std::vector<int64_t>(starts.size(), 1) : steps_in;
  KESTREL_CHECK(starts.size() == ends.size() && axes.size() == starts.size() && steps.size() == starts.size(),
                "Slice node '", n.name, "': starts/ends/axes/steps lengths differ");
  SliceParams p;
  p.starts.assign(in.size(), 0);
  p.steps.assign(in.size(), 1);
  p.out = in;
  for (size_t k = 0; k < axes.size(); ++k) {
    const int64_t a = normalize_axis(axes[k], r, n);
    const int64_t dim = in[a], step = steps[k];
    KESTREL_CHECK(step != 0, "Slice node '", n.name, "': step 0");
    int64_t s = starts[k], e = ends[k];
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    if (step > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      p.out[a] = e > s ? (e - s + step - 1) / step : 0;
    } else {
      s = std::clamp<int64_t>(s, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      p.out[a] = s > e ? (s - e + (-step) - 1) / (-step) : 0;
    }
    p.starts[a] = s;
    p.steps[a] = step;
  }
  return p;
}

std::vector<int64_t> axes_of(InferContext& c, size_t input_index, const char* attr) {
  if (c.attrs().has(attr)) return c.attrs().ints(attr);
  if (c.has_input(input_index)) return c.constant(input_index).to_i64();
  return {};
}

namespace {
// The table. Keep it sorted by name for readability; lookups go through a linear scan that runs only
// at import and build time.
const OpInfo kOps[] = {
    {"Abs", infer_unary, nullptr},
    {"Add", infer_binary, nullptr},
    {"AveragePool", infer_pool, nullptr},
    {"BatchNormalization", infer_same_as_first, nullptr},
    {"Cast", infer_cast, nullptr},
    {"Ceil", infer_unary, nullptr},
    {"Clip", infer_unary, nullptr},
    {"Concat", infer_concat, nullptr},
    {"Constant", infer_constant, nullptr},
    {"ConstantOfShape", infer_constant_of_shape, nullptr},
    {"Conv", infer_conv, flops_conv},
    {"ConvTranspose", infer_conv_transpose, flops_conv_transpose},
    {"DequantizeLinear", infer_dequantize, nullptr},
    {"Div", infer_binary, nullptr},
    {"Equal", infer_compare, nullptr},
    {"Erf", infer_unary, nullptr},
    {"Exp", infer_unary, nullptr},
    {"Expand", infer_expand, nullptr},
    {"Flatten", infer_flatten, nullptr},
    {"Floor", infer_unary, nullptr},
    {"Gather", infer_gather, nullptr},
    {"Gemm", infer_gemm, flops_gemm},
    {"GlobalAveragePool", infer_global_pool, nullptr},
    {"GlobalMaxPool", infer_global_pool, nullptr},
    {"Greater", infer_compare, nullptr},
    {"HardSigmoid", infer_unary, nullptr},
    {"HardSwish", infer_unary, nullptr},
    {"Identity", infer_same_as_first, nullptr},
    {"LeakyRelu", infer_unary, nullptr},
    {"Less", infer_compare, nullptr},
    {"Log", infer_unary, nullptr},
    {"MatMul", infer_matmul, flops_matmul},
    {"Max", infer_variadic, nullptr},
    {"MaxPool", infer_pool, nullptr},
    {"Min", infer_variadic, nullptr},
    {"Mul", infer_binary, nullptr},
    {"Neg", infer_unary, nullptr},
    {"Not", infer_unary, nullptr},
    {"Pad", infer_pad, nullptr},
    {"Pow", infer_binary, nullptr},
    {"QuantizeLinear", infer_quantize, nullptr},
    {"Range", infer_range, nullptr},
    {"Reciprocal", infer_unary, nullptr},
    {"ReduceMax", infer_reduce, nullptr},
    {"ReduceMean", infer_reduce, nullptr},
    {"ReduceMin", infer_reduce, nullptr},
    {"ReduceSum", infer_reduce, nullptr},
    {"Relu", infer_unary, nullptr},
    {"Reshape", infer_reshape, nullptr},
    {"Resize", infer_resize, nullptr},
    {"Round", infer_unary, nullptr},
    {"Shape", infer_shape, nullptr},
    {"Sigmoid", infer_unary, nullptr},
    {"Slice", infer_slice, nullptr},
    {"Softmax", infer_same_as_first, nullptr},
    {"Split", infer_split, nullptr},
    {"Sqrt", infer_unary, nullptr},
    {"Squeeze", infer_squeeze, nullptr},
    {"Sub", infer_binary, nullptr},
    {"Sum", infer_variadic, nullptr},
    {"Tanh", infer_unary, nullptr},
    {"Tile", infer_tile, nullptr},
    {"Transpose", infer_transpose, nullptr},
    {"Unsqueeze", infer_unsqueeze, nullptr},
    {"Where", infer_where, nullptr},
    // Kestrel's fused ops (src/passes/fuse_*.cpp write them; contract in include/kestrel/passes.h).
    {"kestrel.Conv", infer_fused_conv, flops_conv},
    {"kestrel.DetectV5", infer_detect_v5, nullptr},
    {"kestrel.DetectV8", infer_detect_v8, nullptr},
    {"kestrel.SPPF", infer_fused_sppf, nullptr},
    {"kestrel.Attention", infer_fused_attention, flops_attention},
};
}  // namespace

const OpInfo* find_op(std::string_view name) {
  for (const OpInfo& op : kOps)
    if (op.name == name) return &op;
  return nullptr;
}

std::vector<std::string> supported_ops() {
  std::vector<std::string> names;
  for (const OpInfo& op : kOps) names.emplace_back(op.name);
  return names;
}

int64_t node_flops(const Graph& g, const Node& n) {
  const OpInfo* op = find_op(n.op);
  return op && op->flops ? op->flops(g, n) : 0;
}

void Graph::infer_shapes() {
  for (const Node& n : nodes) {
    const OpInfo* op = find_op(n.op);
    KESTREL_CHECK(op, "unsupported operator '", n.op, "' (node '", n.name, "')");
    InferContext ctx(*this, n);
    op->infer(ctx);
  }
}

}  // namespace kestrel
