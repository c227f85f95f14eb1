// Shape inference for Kestrel's fused ops (written by src/passes/fuse_*.cpp, consumed by the CPU
// reference kernels and the CUDA engine). The attribute contract is documented in
// include/kestrel/passes.h; these functions also validate it, so a malformed fused node fails at
// build time with its name rather than as a wrong result at run time.
#include <algorithm>

#include "ir/infer_fns.h"

namespace kestrel {

namespace {
bool known_activation(const std::string& a) {
  static const char* kActs[] = {"none", "relu", "leaky_relu", "sigmoid", "silu", "hard_swish", "hard_sigmoid", "tanh"};
  return std::any_of(std::begin(kActs), std::end(kActs), [&](const char* k) { return a == k; });
}

// The L per-level head maps of a Detect op: 4-D, same batch and dtype. Returns sum(H_i * W_i).
int64_t check_levels(InferContext& c, const std::vector<int64_t>& strides) {
  if (c.num_inputs() == 0) c.error("needs at least one head map");
  if (strides.size() != c.num_inputs())
    c.error("has " + std::to_string(c.num_inputs()) + " inputs but " + std::to_string(strides.size()) + " strides");
  int64_t cells = 0;
  for (size_t i = 0; i < c.num_inputs(); ++i) {
    const Shape& s = c.shape(i);
    if (s.size() != 4) c.error("head map " + std::to_string(i) + " must be 4-D, got " + shape_str(s));
    if (s[0] != c.shape(0)[0]) c.error("head maps disagree on the batch");
    if (c.dtype(i) != DType::F32) c.error("head maps must be float32");
    if (strides[i] <= 0) c.error("non-positive stride");
    cells += s[2] * s[3];
  }
  return cells;
}
}  // namespace

void infer_fused_conv(InferContext& c) {
  infer_conv(c);  // X, W, [B] exactly as ONNX Conv
  const std::string act = c.attrs().s("activation", "none");
  if (!known_activation(act)) c.error("unknown activation '" + act + "'");
  if (c.has_input(3)) {
    // The residual is added elementwise after the activation: no broadcasting, it has Y's shape.
    const Shape& x = c.shape(0);
    const Shape& w = c.shape(1);
    const Shape spatial_w(w.begin() + 2, w.end());
    PoolGeometry g = window_geometry(c.node(), Shape(x.begin() + 2, x.end()),
                                     c.attrs().ints("kernel_shape", spatial_w), false);
    Shape y = {x[0], w[0]};
    y.insert(y.end(), g.out_spatial.begin(), g.out_spatial.end());
    if (c.shape(3) != y) c.error("residual shape " + shape_str(c.shape(3)) + " differs from the output's " + shape_str(y));
    if (c.dtype(3) != c.dtype(0)) c.error("residual dtype differs from the input's");
  }
}

void infer_fused_sppf(InferContext& c) {
  const Shape& x = c.shape(0);
  if (x.size() != 4) c.error("input must be N x C x H x W, got " + shape_str(x));
  const int64_t k = c.attrs().i("kernel", 5);
  if (k <= 0 || k % 2 == 0) c.error("kernel must be odd and positive (pad = kernel / 2 keeps the size)");
  c.set_output(0, c.dtype(0), {x[0], 4 * x[1], x[2], x[3]});
}

void infer_fused_attention(InferContext& c) {
  const Shape& x = c.shape(0);
  if (x.size() != 4) c.error("input must be N x C x H x W, got " + shape_str(x));
  const int64_t nh = c.attrs().i("num_heads"), kd = c.attrs().i("key_dim"), hd = c.attrs().i("head_dim");
  if (nh <= 0 || kd <= 0 || hd <= 0) c.error("num_heads, key_dim and head_dim must be positive");
  if (x[1] != nh * (2 * kd + hd))
    c.error("input has " + std::to_string(x[1]) + " channels, expected num_heads * (2 key_dim + head_dim) = " +
            std::to_string(nh * (2 * kd + hd)));
  if (c.num_outputs() < 1 || c.num_outputs() > 2) c.error("has one or two outputs (Y, and optionally V)");
  for (size_t i = 0; i < c.num_outputs(); ++i) c.set_output(i, c.dtype(0), {x[0], nh * hd, x[2], x[3]});
}

// The two products: scores (N x N x kd per head) and the weighted sum (N x N x hd per head).
int64_t flops_attention(const Graph& g, const Node& n) {
  const Shape& x = g.value(n.inputs[0]).shape;
  if (x.size() != 4) return 0;
  const int64_t N = x[2] * x[3];
  return 2 * x[0] * n.attrs.i("num_heads") * N * N * (n.attrs.i("key_dim") + n.attrs.i("head_dim"));
}

void infer_detect_v8(InferContext& c) {
  const int64_t reg_max = c.attrs().i("reg_max", 16);
  const int64_t nc = c.attrs().i("num_classes");
  const int64_t cells = check_levels(c, c.attrs().ints("strides"));
  if (reg_max <= 0 || nc <= 0) c.error("reg_max and num_classes must be positive");
  for (size_t i = 0; i < c.num_inputs(); ++i)
    if (c.shape(i)[1] != 4 * reg_max + nc)
      c.error("head map " + std::to_string(i) + " has " + std::to_string(c.shape(i)[1]) + " channels, expected 4 * " +
              std::to_string(reg_max) + " + " + std::to_string(nc));
  c.set_output(0, DType::F32, {c.shape(0)[0], 4 + nc, cells});
}

void infer_detect_v5(InferContext& c) {
  const int64_t nc = c.attrs().i("num_classes");
  const int64_t na = c.attrs().i("num_anchors", 3);
  const auto strides = c.attrs().ints("strides");
  const int64_t cells = check_levels(c, strides);
  if (nc <= 0 || na <= 0) c.error("num_classes and num_anchors must be positive");
  if (c.attrs().floats("anchors").size() != strides.size() * na * 2)
    c.error("anchors must hold num_anchors (w, h) pairs per level");
  for (size_t i = 0; i < c.num_inputs(); ++i)
    if (c.shape(i)[1] != na * (5 + nc))
      c.error("head map " + std::to_string(i) + " has " + std::to_string(c.shape(i)[1]) + " channels, expected " +
              std::to_string(na) + " * (5 + " + std::to_string(nc) + ")");
  c.set_output(0, DType::F32, {c.shape(0)[0], na * cells, 5 + nc});
}

}  // namespace kestrel
