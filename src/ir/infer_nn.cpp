#include <cmath>

#include "ir/infer_fns.h"

namespace kestrel {

namespace {
Shape spatial(const Shape& s) { return Shape(s.begin() + 2, s.end()); }
}  // namespace

void infer_conv(InferContext& c) {
  const Shape& x = c.shape(0);
  const Shape& w = c.shape(1);
  if (x.size() < 3) c.error("input must be N x C x spatial, got " + shape_str(x));
  if (w.size() != x.size()) c.error("weight rank " + std::to_string(w.size()) + " != input rank");
  const int64_t group = c.attrs().i("group", 1);
  if (x[1] != w[1] * group)
    c.error("input has " + std::to_string(x[1]) + " channels, weight expects " + std::to_string(w[1] * group));
  if (w[0] % group) c.error("output channels not divisible by group");
  if (c.has_input(2) && shape_numel(c.shape(2)) != w[0]) c.error("bias size does not match output channels");
  const std::vector<int64_t> kernel = c.attrs().ints("kernel_shape", spatial(w));
  PoolGeometry g = window_geometry(c.node(), spatial(x), kernel, false);
  Shape out = {x[0], w[0]};
  out.insert(out.end(), g.out_spatial.begin(), g.out_spatial.end());
  c.set_output(0, c.dtype(0), out);
}

void infer_conv_transpose(InferContext& c) {
  const Shape& x = c.shape(0);
  const Shape& w = c.shape(1);
  if (x.size() < 3 || w.size() != x.size()) c.error("bad input/weight ranks");
  const int64_t group = c.attrs().i("group", 1);
  if (x[1] != w[0]) c.error("input channels do not match weight");
  const size_t r = x.size() - 2;
  const auto kernel = c.attrs().ints("kernel_shape", spatial(w));
  const auto strides = c.attrs().ints("strides", std::vector<int64_t>(r, 1));
  const auto dil = c.attrs().ints("dilations", std::vector<int64_t>(r, 1));
  const auto pads = c.attrs().ints("pads", std::vector<int64_t>(2 * r, 0));
  const auto opad = c.attrs().ints("output_padding", std::vector<int64_t>(r, 0));
  if (c.attrs().has("output_shape") || c.attrs().s("auto_pad", "NOTSET") != "NOTSET")
    c.error("output_shape/auto_pad are not supported; export with explicit pads");
  Shape out = {x[0], w[1] * group};
  for (size_t i = 0; i < r; ++i)
    out.push_back(strides[i] * (x[2 + i] - 1) + opad[i] + (kernel[i] - 1) * dil[i] + 1 - pads[i] - pads[i + r]);
  c.set_output(0, c.dtype(0), out);
}

void infer_pool(InferContext& c) {
  const Shape& x = c.shape(0);
  if (x.size() < 3) c.error("input must be N x C x spatial");
  PoolGeometry g = window_geometry(c.node(), spatial(x), c.attrs().ints("kernel_shape"), c.attrs().i("ceil_mode", 0));
  Shape out = {x[0], x[1]};
  out.insert(out.end(), g.out_spatial.begin(), g.out_spatial.end());
  c.set_output(0, c.dtype(0), out);
  if (c.num_outputs() > 1 && !c.node().outputs[1].empty()) c.error("MaxPool indices output is not supported");
}

void infer_global_pool(InferContext& c) {
  Shape out = c.shape(0);
  if (out.size() < 3) c.error("input must be N x C x spatial");
  for (size_t i = 2; i < out.size(); ++i) out[i] = 1;
  c.set_output(0, c.dtype(0), out);
}

void infer_resize(InferContext& c) {
  const Shape& x = c.shape(0);
  const std::string mode = c.attrs().s("mode", "nearest");
  if (mode != "nearest" && mode != "linear") c.error("mode '" + mode + "' is not supported (nearest, linear)");
  Shape out = x;
  if (c.attrs().has("kestrel_sizes")) {  // canonical form written by the importer
    out = c.attrs().ints("kestrel_sizes");
  } else if (c.has_input(3) && c.constant(3).numel() > 0) {
    auto sizes = c.constant(3).to_i64();
    if (sizes.size() != x.size()) c.error("sizes rank mismatch");
    out = sizes;
  } else {
    // opset 10 has scales as input 1; opset 11+ as input 2.
    const size_t si = c.num_inputs() == 2 ? 1 : 2;
    if (!c.has_input(si)) c.error("neither scales nor sizes given");
    auto scales = c.constant(si).to_f32();
    if (scales.size() != x.size()) c.error("scales rank mismatch");
    for (size_t i = 0; i < x.size(); ++i) out[i] = static_cast<int64_t>(std::floor(x[i] * static_cast<double>(scales[i])));
  }
  if (out[0] != x[0] || out[1] != x[1]) c.error("resizing batch or channels is not supported");
  c.set_output(0, c.dtype(0), out);
}

void infer_matmul(InferContext& c) {
  Shape a = c.shape(0), b = c.shape(1);
  if (a.empty() || b.empty()) c.error("scalar operands");
  const bool a1 = a.size() == 1, b1 = b.size() == 1;
  if (a1) a.insert(a.begin(), 1);
  if (b1) b.push_back(1);
  if (a.back() != b[b.size() - 2])
    c.error("inner dimensions differ: " + shape_str(c.shape(0)) + " x " + shape_str(c.shape(1)));
  Shape ba(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
  Shape out = broadcast_shapes(ba, bb, c.node());
  if (!a1) out.push_back(a[a.size() - 2]);
  if (!b1) out.push_back(b.back());
  c.set_output(0, c.dtype(0), out);
}

void infer_gemm(InferContext& c) {
  const Shape& a = c.shape(0);
  const Shape& b = c.shape(1);
  if (a.size() != 2 || b.size() != 2) c.error("Gemm needs 2-D operands");
  const bool ta = c.attrs().i("transA", 0), tb = c.attrs().i("transB", 0);
  const int64_t m = ta ? a[1] : a[0], k = ta ? a[0] : a[1];
  const int64_t kb = tb ? b[1] : b[0], n = tb ? b[0] : b[1];
  if (k != kb) c.error("inner dimensions differ");
  if (c.has_input(2)) broadcast_shapes(c.shape(2), {m, n}, c.node());
  c.set_output(0, c.dtype(0), {m, n});
}

void infer_reduce(InferContext& c) {
  const Shape& x = c.shape(0);
  const int64_t r = static_cast<int64_t>(x.size());
  std::vector<int64_t> axes = axes_of(c, 1, "axes");
  const bool keep = c.attrs().i("keepdims", 1);
  if (axes.empty() && c.attrs().i("noop_with_empty_axes", 0)) {
    c.set_output(0, c.dtype(0), x);
    return;
  }
  std::vector<bool> reduced(x.size(), axes.empty());
  for (int64_t a : axes) reduced[normalize_axis(a, r, c.node())] = true;
  Shape out;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!reduced[i]) out.push_back(x[i]);
    else if (keep) out.push_back(1);
  }
  c.set_output(0, c.dtype(0), out);
}

int64_t flops_conv(const Graph& g, const Node& n) {
  const Shape& w = g.value(n.inputs[1]).shape;
  const Value& out = g.value(n.outputs[0]);
  // Each output element costs (C/group) * prod(kernel) MACs.
  int64_t k = 1;
  for (size_t i = 1; i < w.size(); ++i) k *= w[i];
  return 2 * shape_numel(out.shape) * k;
}

int64_t flops_conv_transpose(const Graph& g, const Node& n) {
  const Shape& w = g.value(n.inputs[1]).shape;
  const Shape& x = g.value(n.inputs[0]).shape;
  int64_t k = 1;
  for (size_t i = 1; i < w.size(); ++i) k *= w[i];
  return 2 * shape_numel(x) * k;
}

int64_t flops_matmul(const Graph& g, const Node& n) {
  const Shape& a = g.value(n.inputs[0]).shape;
  const Value& out = g.value(n.outputs[0]);
  return 2 * shape_numel(out.shape) * a.back();
}

int64_t flops_gemm(const Graph& g, const Node& n) {
  const Shape& a = g.value(n.inputs[0]).shape;
  const int64_t k = n.attrs.i("transA", 0) ? a[0] : a[1];
  return 2 * shape_numel(g.value(n.outputs[0]).shape) * k;
}

}  // namespace kestrel
