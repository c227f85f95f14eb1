#pragma once
// Graph rewrites. Each pass is small, separately tested, and leaves a graph with inferred shapes.
#include <cstdint>
#include <string>
#include <vector>

#include "kestrel/graph.h"

namespace kestrel::passes {

struct FoldOptions {
  // When a static-batch graph is re-batched, Reshape targets whose leading entry is the old batch
  // are rewritten to the new one (the tracer baked the batch into them).
  int64_t old_batch = 0;
  int64_t new_batch = 0;
};

// Infers shapes node by node and evaluates every node whose inputs are all constant (including
// Shape of a tensor with a known shape) on the CPU backend; folded nodes are removed.
void fold_constants(Graph& g, const FoldOptions& options = {});
// Moves constant parameter inputs (Slice starts/ends, Reshape shape, Unsqueeze axes, Resize sizes, ...)
// into attributes, so backends see one canonical form whatever the opset.
void canonicalize(Graph& g);
// Removes nodes none of whose outputs reach a graph output, then unused values.
void eliminate_dead_nodes(Graph& g);
// The graph at another batch (for engines that hold a plan per batch): input shapes change, baked
// Reshape targets and Resize sizes that lead with the batch follow, shapes are re-inferred. A graph
// whose outputs do not follow the batch is an error.
void rebatch(Graph& g, int64_t batch);

// ---------------------------------------------------------------------------------------------
// Fusion passes. They rewrite ONNX patterns into Kestrel's fused ops, whose contract (shared with
// the CUDA engine) is:
//   kestrel.Conv   inputs X, W, [B], [R] ("" for an absent B); ONNX Conv attributes plus
//                  activation (none|relu|leaky_relu|sigmoid|silu|hard_swish|hard_sigmoid|tanh) and
//                  alpha, beta (floats; leaky_relu's alpha, hard_sigmoid's alpha/beta, 0 otherwise;
//                  always present). Y = act(conv(X, W) + B) + R, R having Y's shape.
//   kestrel.SPPF   input X; attr kernel (int). Y = Concat([X, m(X), m(m(X)), m(m(m(X)))], axis 1),
//                  m = MaxPool(kernel, stride 1, pad kernel / 2).
//   kestrel.Attention  input QKV [B, nh (2 kd + hd), H, W]; attrs num_heads (nh), key_dim (kd), head_dim
//                  (hd), scale (float). Viewed as [B, nh, 2 kd + hd, N = H W], each head's channels are q
//                  (kd), k (kd), v (hd). Y[b, h hd + c, n] = sum_m v[b, h, c, m] P[b, h, n, m] with
//                  P = softmax_m(scale * sum_c q[b, h, c, n] k[b, h, c, m]), Y [B, nh hd, H, W]; the optional
//                  second output V [B, nh hd, H, W] is v as an image (V[b, h hd + c, n] = v[b, h, c, n]).
//   kestrel.DetectV8  inputs: the L per-level head maps [B, 4 reg_max + nc, H_i, W_i]; attrs reg_max,
//                  num_classes, strides. Y [B, 4 + nc, sum H_i W_i]: DFL boxes (cx, cy, w, h) in
//                  pixels and sigmoid class scores.
//   kestrel.DetectV5  inputs: the L raw head convs [B, na (5 + nc), H_i, W_i]; attrs num_classes,
//                  num_anchors, strides, anchors (per level na (w, h) pairs, pixels).
//                  Y [B, sum na H_i W_i, 5 + nc] in (level, anchor, y, x) order.
// Every fused node carries kestrel_fused: the original nodes it replaced, as "op:name". The detect
// ops also carry kestrel_verified_rel_l2 (float): how closely they matched the sub-graph they replaced.
// Each pass returns how many rewrites it made and leaves a graph with inferred shapes.

// Conv -> BatchNormalization: the BN is folded into the conv's weights and bias.
int fold_batchnorm(Graph& g);
// Conv followed by Relu / LeakyRelu / Sigmoid / HardSwish / HardSigmoid / Tanh, or by SiLU exported
// as Mul(x, Sigmoid(x)), becomes one kestrel.Conv; every other 2-D Conv with constant weights becomes a
// kestrel.Conv with activation none, so engines see a single convolution op. Returns the number of
// Conv nodes rewritten (activations_fused, when given, receives how many of them absorbed one).
int fuse_conv_activation(Graph& g, int* activations_fused = nullptr);
// Add(kestrel.Conv output, other) where the conv output has no other reader: other becomes the
// conv's residual input R.
int fuse_residual_add(Graph& g);
// The SPPF block (three chained MaxPool(k, 1, k/2) concatenated with their input) -> kestrel.SPPF.
int fuse_sppf(Graph& g);
// YOLO11's C2PSA attention (Reshape, Split into q / k / v, Transpose, MatMul, scale Mul, Softmax,
// Transpose, MatMul, Reshape, and the Reshape of v the positional conv reads) -> kestrel.Attention.
// Not part of optimize(): the engine builder applies it to float and Q/DQ graphs alike, after
// quantization, whose passes and Q/DQ export know only the ONNX form.
int fuse_attention(Graph& g);
// The in-graph box decode of a YOLOv8/11 (DFL) or YOLOv5 (anchor) head, from the per-level head maps
// to the graph output -> kestrel.DetectV8 / kestrel.DetectV5. Accepted only when the fused op agrees
// numerically with the original sub-graph on a random input (relative L2 < 1e-5); otherwise the
// graph is left alone.
int fuse_detect_head(Graph& g);

struct OptimizeOptions {
  bool fold_constants = true;
  bool eliminate_dead_nodes = true;
  bool fold_batchnorm = true;
  bool fuse_conv_activation = true;
  bool fuse_residual_add = true;
  bool fuse_sppf = true;
  bool fuse_detect_head = true;
};

struct PassStat {
  std::string name;
  int rewrites = 0;
  std::string detail;  // optional breakdown, e.g. "57 with activation"
};

struct OptimizeReport {
  std::vector<PassStat> passes;  // in the order they ran (disabled passes are absent)
  size_t nodes_before = 0, nodes_after = 0;
  int rewrites(const std::string& pass) const;  // 0 when the pass did not run
  std::string summary() const;                  // one line per pass
};

// Runs fold_constants, eliminate_dead_nodes, fold_batchnorm, fuse_conv_activation, fuse_residual_add,
// fuse_sppf, fuse_detect_head, eliminate_dead_nodes (each unless disabled), then re-runs shape inference.
OptimizeReport optimize(Graph& g, const OptimizeOptions& options = {});
// What the engine builder runs on a model before lowering it (and `kestrel inspect --optimized` shows):
// optimize(), unless the graph is a Q/DQ graph (fused already: optimizing it again would fold its weight
// DequantizeLinear nodes back into float constants), then fuse_attention().
OptimizeReport optimize_for_engine(Graph& g, bool qdq);

}  // namespace kestrel::passes
