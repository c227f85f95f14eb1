// Every op kind and fused kind of the CUDA engine against the CPU reference backend, on random inputs
// of several shapes, in FP32 and FP16, with every tactic each layer offers (not only the one timing
// picks), each element within the precision's bound (builder/accuracy_bounds.h: FP32 2^-13, FP16 32 u
// of |ref| + rms(ref); relative L2 FP32 2^-13, FP16 8 u). In FP16 runs each 4-D input first goes through
// an identity MaxPool(1), so the op under test reads channels-last FP16 tensors as it does inside a
// network; the CPU reference runs the same graph.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <set>
#include <sstream>

#include "backend/cuda/layer.h"
#include "backend/cuda/strided.h"
#include "builder/accuracy_bounds.h"
#include "builder/build_plan.h"
#include "gpu_test_util.h"
#include "kestrel/cpu_backend.h"

namespace {

using namespace kestrel;
using test::random_tensor;

// A one-op (or few-op) graph under construction.
struct G {
  Graph g;
  std::vector<HostTensor> feeds;
  bool nhwc_prefix = false;
  uint32_t seed = 7;

  std::string input(const std::string& name, Shape s, float lo = -2.f, float hi = 2.f) {
    Value v;
    v.name = name;
    v.shape = s;
    v.shape_known = true;
    g.add_value(v);
    g.inputs.push_back(name);
    feeds.push_back(random_tensor(s, lo, hi, seed++));
    if (nhwc_prefix && s.size() == 4) {
      Attributes a;
      a.set("kernel_shape", std::vector<int64_t>{1, 1});
      node("MaxPool", {name}, {name + "_cl"}, a);
      return name + "_cl";
    }
    return name;
  }
  std::string constant(const std::string& name, HostTensor t) {
    Value v;
    v.name = name;
    v.dtype = t.dtype();
    v.shape = t.shape();
    v.shape_known = true;
    v.constant = t;
    g.add_value(v);
    return name;
  }
  std::string rconst(const std::string& name, Shape s, float lo = -1.f, float hi = 1.f) {
    return constant(name, random_tensor(s, lo, hi, seed++));
  }
  void node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out, Attributes a = {}) {
    Node n;
    n.name = op + "_" + std::to_string(g.nodes.size());
    n.op = op;
    n.inputs = std::move(in);
    n.outputs = out;
    n.attrs = std::move(a);
    for (auto& o : out) {
      Value v;
      v.name = o;
      g.add_value(v);
    }
    g.nodes.push_back(std::move(n));
  }
  void output(const std::string& name) { g.outputs.push_back(name); }
};

using Maker = std::function<void(G&)>;

struct OpCase {
  const char* name;
  Maker make;
};

Attributes attrs(std::initializer_list<std::pair<const char*, Attribute>> kv) {
  Attributes a;
  for (auto& [k, v] : kv) a.set(k, v);
  return a;
}
using I = std::vector<int64_t>;
using F = std::vector<float>;

void unary(G& g, const char* op, Shape s, Attributes a = {}, float lo = -3.f, float hi = 3.f) {
  const std::string x = g.input("x", s, lo, hi);
  g.node(op, {x}, {"y"}, a);
  g.output("y");
}

void binary(G& g, const char* op, Shape sa, Shape sb, bool b_const = false, float lo = -2.f, float hi = 2.f) {
  const std::string a = g.input("a", sa);
  const std::string b = b_const ? g.rconst("b", sb, lo, hi) : g.input("b", sb, lo, hi);
  g.node(op, {a, b}, {"y"});
  g.output("y");
}

void conv(G& g, int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t kh, int64_t stride, int64_t pad, int64_t group,
          int64_t dil, bool bias, const char* fused_act = nullptr, bool residual = false) {
  const std::string x = g.input("x", {n, c, h, w});
  std::vector<std::string> in = {x, g.rconst("w", {k, c / group, kh, kh}, -0.3f, 0.3f)};
  in.push_back(bias ? g.rconst("b", {k}) : "");
  Attributes a = attrs({{"kernel_shape", I{kh, kh}}, {"strides", I{stride, stride}}, {"pads", I{pad, pad, pad, pad}},
                        {"group", group}, {"dilations", I{dil, dil}}});
  std::string op = "Conv";
  if (fused_act) {
    op = "kestrel.Conv";
    a.set("activation", std::string(fused_act));
    a.set("alpha", std::string(fused_act) == "hard_sigmoid" ? 0.2f : 0.1f);
    a.set("beta", 0.5f);
    if (residual) {
      const int64_t oh = (h + 2 * pad - dil * (kh - 1) - 1) / stride + 1, ow = (w + 2 * pad - dil * (kh - 1) - 1) / stride + 1;
      in.push_back(g.input("r", {n, k, oh, ow}));
    }
  } else if (!bias) {
    in.pop_back();
  }
  g.node(op, in, {"y"}, a);
  g.output("y");
}

// kestrel.Attention with both outputs (Y and v as an image); scale as Ultralytics sets it, 1 / sqrt(kd).
void attention(G& g, int64_t n, int64_t nh, int64_t kd, int64_t hd, int64_t h, int64_t w) {
  const std::string x = g.input("x", {n, nh * (2 * kd + hd), h, w});
  g.node("kestrel.Attention", {x}, {"y", "v"},
         attrs({{"num_heads", nh}, {"key_dim", kd}, {"head_dim", hd}, {"scale", 1.f / std::sqrt(static_cast<float>(kd))}}));
  g.output("y");
  g.output("v");
}

const std::vector<OpCase>& cases() {
  static const std::vector<OpCase> c = {
      // Unary.
      {"Relu", [](G& g) { unary(g, "Relu", {2, 8, 5, 7}); }},
      {"LeakyRelu", [](G& g) { unary(g, "LeakyRelu", {1, 16, 9, 9}, attrs({{"alpha", 0.1f}})); }},
      {"Sigmoid", [](G& g) { unary(g, "Sigmoid", {1, 24, 6, 10}); }},
      {"HardSigmoid", [](G& g) { unary(g, "HardSigmoid", {1, 8, 4, 4}, attrs({{"alpha", 0.25f}, {"beta", 0.4f}})); }},
      {"HardSwish", [](G& g) { unary(g, "HardSwish", {1, 8, 4, 4}, {}, -5.f, 5.f); }},
      {"Tanh", [](G& g) { unary(g, "Tanh", {3, 5, 7}); }},
      {"Exp", [](G& g) { unary(g, "Exp", {1, 8, 4, 4}); }},
      {"Log", [](G& g) { unary(g, "Log", {1, 8, 4, 4}, {}, 0.1f, 4.f); }},
      {"Sqrt", [](G& g) { unary(g, "Sqrt", {1, 8, 4, 4}, {}, 0.1f, 4.f); }},
      {"Reciprocal", [](G& g) { unary(g, "Reciprocal", {1, 8, 4, 4}, {}, 0.5f, 4.f); }},
      {"Neg_Abs", [](G& g) {
         const std::string x = g.input("x", {1, 8, 4, 4});
         g.node("Neg", {x}, {"n"});
         g.node("Abs", {"n"}, {"y"});
         g.output("y");
       }},
      {"Clip", [](G& g) { unary(g, "Clip", {1, 8, 6, 6}, attrs({{"min", -0.5f}, {"max", 1.5f}})); }},
      {"Floor_Ceil", [](G& g) {
         const std::string x = g.input("x", {2, 3, 17});
         g.node("Floor", {x}, {"f"});
         g.node("Ceil", {x}, {"c"});
         g.node("Add", {"f", "c"}, {"y"});
         g.output("y");
       }},
      // Binary with broadcasting.
      {"Add_same", [](G& g) { binary(g, "Add", {2, 16, 8, 8}, {2, 16, 8, 8}); }},
      {"Add_channel_const", [](G& g) { binary(g, "Add", {1, 32, 10, 10}, {32, 1, 1}, true); }},
      {"Sub_row", [](G& g) { binary(g, "Sub", {1, 2, 8400}, {1, 1, 8400}); }},
      {"Mul_scalar", [](G& g) { binary(g, "Mul", {1, 8, 9, 9}, {}, true); }},
      {"Mul_silu", [](G& g) {
         const std::string x = g.input("x", {1, 16, 12, 12});
         g.node("Sigmoid", {x}, {"s"});
         g.node("Mul", {x, "s"}, {"y"});
         g.output("y");
       }},
      {"Div", [](G& g) { binary(g, "Div", {1, 4, 6, 6}, {1, 4, 6, 6}, false, 0.5f, 2.f); }},
      {"Pow2", [](G& g) { binary(g, "Pow", {1, 3, 8, 8, 2}, {}, true, 2.f, 2.f); }},
      {"MinMaxSum", [](G& g) {
         const std::string a = g.input("a", {1, 8, 5, 5});
         const std::string b = g.input("b", {1, 8, 5, 5});
         const std::string c = g.rconst("c", {8, 1, 1});
         g.node("Min", {a, b}, {"mn"});
         g.node("Max", {a, c}, {"mx"});
         g.node("Sum", {"mn", "mx", a}, {"y"});
         g.output("y");
       }},
      {"Where_Less", [](G& g) {
         const std::string a = g.input("a", {1, 8, 5, 5});
         const std::string b = g.input("b", {1, 8, 5, 5});
         g.node("Less", {a, b}, {"m"});
         g.node("Where", {"m", a, b}, {"y"});
         g.output("y");
       }},
      // Data movement.
      {"Concat_c", [](G& g) {
         const std::string a = g.input("a", {2, 8, 6, 6});
         const std::string b = g.input("b", {2, 24, 6, 6});
         g.node("Concat", {a, b, a}, {"y"}, attrs({{"axis", int64_t{1}}}));
         g.output("y");
       }},
      {"Concat_last", [](G& g) {
         const std::string a = g.input("a", {1, 144, 64});
         const std::string b = g.input("b", {1, 144, 16});
         g.node("Concat", {a, b}, {"y"}, attrs({{"axis", int64_t{2}}}));
         g.output("y");
       }},
      {"Split_Concat", [](G& g) {
         const std::string x = g.input("x", {1, 32, 8, 8});
         g.node("Split", {x}, {"s0", "s1"}, attrs({{"axis", int64_t{1}}, {"split", I{8, 24}}}));
         g.node("Relu", {"s1"}, {"r"});
         g.node("Concat", {"s0", "r", "s1"}, {"y"}, attrs({{"axis", int64_t{1}}}));
         g.output("y");
       }},
      {"Slice_steps", [](G& g) {
         const std::string x = g.input("x", {1, 16, 12, 12});
         g.node("Slice", {x}, {"y"}, attrs({{"starts", I{1, 2}}, {"ends", I{15, 11}}, {"axes", I{1, 3}}, {"steps", I{2, 3}}}));
         g.output("y");
       }},
      {"Transpose", [](G& g) {
         const std::string x = g.input("x", {1, 3, 85, 6, 6});
         g.node("Transpose", {x}, {"y"}, attrs({{"perm", I{0, 1, 3, 4, 2}}}));
         g.output("y");
       }},
      {"Transpose_last2_tiled", [](G& g) {  // the attention block's [B, heads, N, N] transpose, odd tiles
         const std::string x = g.input("x", {2, 3, 45, 37});
         g.node("Transpose", {x}, {"y"}, attrs({{"perm", I{0, 1, 3, 2}}}));
         g.output("y");
       }},
      {"Transpose_rest_dims_tiled", [](G& g) {  // unit-stride dims apart, a rest dim between them
         const std::string x = g.input("x", {3, 40, 5, 33});
         g.node("Transpose", {x}, {"y"}, attrs({{"perm", I{3, 2, 0, 1}}}));
         g.output("y");
       }},
      {"Reshape_of_slice", [](G& g) {  // a Reshape copying a strided view: its two sides' dims differ
         const std::string x = g.input("x", {2, 24, 40});
         g.node("Slice", {x}, {"s"}, attrs({{"starts", I{0}}, {"ends", I{32}}, {"axes", I{2}}}));
         g.node("Reshape", {"s"}, {"y"}, attrs({{"shape", I{2, 32, 24}}}));
         g.output("y");
       }},
      {"Reshape_channels_last_conv", [](G& g) {  // the attention block's qkv split into heads: a transpose
         const std::string x = g.input("x", {2, 16, 10, 10});
         g.node("kestrel.Conv", {x, g.rconst("w", {32, 16, 1, 1}, -0.3f, 0.3f), g.rconst("b", {32})}, {"c"},
                attrs({{"kernel_shape", I{1, 1}}, {"strides", I{1, 1}}, {"pads", I{0, 0, 0, 0}}, {"group", int64_t{1}},
                       {"dilations", I{1, 1}}, {"activation", std::string("silu")}}));
         g.node("Reshape", {"c"}, {"y"}, attrs({{"shape", I{2, 2, 16, 100}}}));
         g.output("y");
       }},
      {"Reshape_chain", [](G& g) {
         const std::string x = g.input("x", {1, 64, 8, 8});
         g.node("Reshape", {x}, {"r"}, attrs({{"shape", I{1, 4, 16, 64}}}));
         g.node("Transpose", {"r"}, {"t"}, attrs({{"perm", I{0, 2, 1, 3}}}));
         g.node("Softmax", {"t"}, {"s"}, attrs({{"axis", int64_t{1}}}));
         g.node("Flatten", {"s"}, {"y"}, attrs({{"axis", int64_t{1}}}));
         g.output("y");
       }},
      {"Squeeze_Unsqueeze_Expand", [](G& g) {
         const std::string x = g.input("x", {1, 8, 1, 5});
         g.node("Squeeze", {x}, {"s"}, attrs({{"axes", I{2}}}));
         g.node("Unsqueeze", {"s"}, {"u"}, attrs({{"axes", I{0}}}));
         g.node("Expand", {"u", g.constant("shape", HostTensor::from_i64({5}, {2, 1, 3, 8, 5}))}, {"y"});
         g.output("y");
       }},
      {"Tile_Pad", [](G& g) {
         const std::string x = g.input("x", {1, 4, 5, 5});
         g.node("Tile", {x, g.constant("reps", HostTensor::from_i64({4}, {1, 2, 1, 3}))}, {"t"});
         g.node("Pad", {"t"}, {"y"}, attrs({{"pads", I{0, 0, 1, 2, 0, 1, 3, 0}}, {"mode", std::string("reflect")}}));
         g.output("y");
       }},
      {"Gather", [](G& g) {
         const std::string x = g.input("x", {1, 6, 7, 3});
         g.node("Gather", {x, g.constant("idx", HostTensor::from_i64({3}, {4, 0, -1}))}, {"y"}, attrs({{"axis", int64_t{2}}}));
         g.output("y");
       }},
      {"Cast", [](G& g) {
         const std::string x = g.input("x", {1, 8, 4, 4});
         g.node("Cast", {x}, {"h"}, attrs({{"to", int64_t{10}}}));
         g.node("Cast", {"h"}, {"y"}, attrs({{"to", int64_t{1}}}));
         g.output("y");
       }},
      // Convolutions (plain ONNX Conv: every tactic family).
      {"Conv_3x3_s1", [](G& g) { conv(g, 1, 16, 20, 20, 32, 3, 1, 1, 1, 1, true); }},
      {"Conv_3x3_s2", [](G& g) { conv(g, 2, 32, 19, 17, 64, 3, 2, 1, 1, 1, true); }},
      {"Conv_1x1", [](G& g) { conv(g, 1, 64, 10, 10, 24, 1, 1, 0, 1, 1, true); }},
      {"Conv_first_C3", [](G& g) { conv(g, 1, 3, 64, 64, 16, 3, 2, 1, 1, 1, true); }},
      // The stem's other paths: an odd height (the last window's row is padding), K = 48 (yolov8m), and a
      // width that is not a multiple of 4 (the generic loop instead of the unrolled 3x3 stride-2 one).
      {"Conv_first_C3_K48", [](G& g) { conv(g, 2, 3, 37, 44, 48, 3, 2, 1, 1, 1, true, "silu"); }},
      {"Conv_first_C3_w38", [](G& g) { conv(g, 1, 3, 21, 38, 32, 3, 2, 1, 1, 1, true, "silu"); }},
      {"Conv_odd_channels", [](G& g) { conv(g, 1, 5, 11, 11, 7, 3, 1, 1, 1, 1, false); }},
      {"Conv_grouped", [](G& g) { conv(g, 1, 16, 9, 9, 32, 3, 1, 1, 4, 1, true); }},
      {"Conv_depthwise", [](G& g) { conv(g, 1, 32, 14, 14, 32, 3, 1, 1, 32, 1, true); }},
      {"Conv_dilated_5x5", [](G& g) { conv(g, 1, 8, 16, 16, 16, 5, 1, 4, 1, 2, true); }},
      {"Conv_large_K", [](G& g) { conv(g, 1, 256, 20, 20, 128, 3, 1, 1, 1, 1, true); }},
      // Fused kestrel.Conv: every activation, with and without the residual.
      {"FConv_silu", [](G& g) { conv(g, 1, 32, 16, 16, 64, 3, 1, 1, 1, 1, true, "silu"); }},
      {"FConv_silu_residual", [](G& g) { conv(g, 2, 32, 16, 16, 32, 3, 1, 1, 1, 1, true, "silu", true); }},
      {"FConv_relu", [](G& g) { conv(g, 1, 16, 12, 12, 16, 1, 1, 0, 1, 1, true, "relu", true); }},
      {"FConv_leaky", [](G& g) { conv(g, 1, 16, 12, 12, 16, 3, 2, 1, 1, 1, true, "leaky_relu"); }},
      {"FConv_sigmoid", [](G& g) { conv(g, 1, 8, 12, 12, 16, 3, 1, 1, 1, 1, true, "sigmoid"); }},
      {"FConv_hard_swish", [](G& g) { conv(g, 1, 8, 12, 12, 16, 3, 1, 1, 1, 1, true, "hard_swish"); }},
      {"FConv_hard_sigmoid", [](G& g) { conv(g, 1, 8, 12, 12, 16, 3, 1, 1, 1, 1, true, "hard_sigmoid"); }},
      {"FConv_tanh", [](G& g) { conv(g, 1, 8, 12, 12, 16, 3, 1, 1, 1, 1, true, "tanh"); }},
      {"FConv_none_nobias_dw", [](G& g) { conv(g, 1, 64, 10, 10, 64, 3, 1, 1, 64, 1, false, "none", true); }},
      {"ConvTranspose", [](G& g) {
         const std::string x = g.input("x", {1, 8, 6, 6});
         g.node("ConvTranspose", {x, g.rconst("w", {8, 4, 3, 3}), g.rconst("b", {4})}, {"y"},
                attrs({{"strides", I{2, 2}}, {"pads", I{1, 1, 1, 1}}, {"output_padding", I{1, 1}}}));
         g.output("y");
       }},
      {"BatchNorm", [](G& g) {
         const std::string x = g.input("x", {1, 8, 6, 6});
         g.node("BatchNormalization",
                {x, g.rconst("s", {8}), g.rconst("bb", {8}), g.rconst("m", {8}), g.rconst("v", {8}, 0.5f, 2.f)}, {"y"},
                attrs({{"epsilon", 1e-3f}}));
         g.output("y");
       }},
      // Pooling, resize, SPPF.
      {"MaxPool_3x3_s2", [](G& g) { unary(g, "MaxPool", {1, 16, 15, 15}, attrs({{"kernel_shape", I{3, 3}}, {"strides", I{2, 2}}, {"pads", I{1, 1, 1, 1}}})); }},
      {"MaxPool_ceil", [](G& g) { unary(g, "MaxPool", {1, 8, 10, 10}, attrs({{"kernel_shape", I{2, 2}}, {"strides", I{2, 2}}, {"ceil_mode", int64_t{1}}})); }},
      {"AvgPool_pad", [](G& g) {
         unary(g, "AveragePool", {1, 8, 9, 9},
               attrs({{"kernel_shape", I{3, 3}}, {"strides", I{2, 2}}, {"pads", I{1, 1, 1, 1}}, {"count_include_pad", int64_t{1}}}));
       }},
      {"GlobalPools", [](G& g) {
         const std::string x = g.input("x", {2, 16, 7, 9});
         g.node("GlobalAveragePool", {x}, {"a"});
         g.node("GlobalMaxPool", {x}, {"m"});
         g.node("Add", {"a", "m"}, {"y"});
         g.output("y");
       }},
      {"Resize_nearest", [](G& g) {
         unary(g, "Resize", {1, 16, 10, 10},
               attrs({{"mode", std::string("nearest")}, {"coordinate_transformation_mode", std::string("asymmetric")},
                      {"nearest_mode", std::string("floor")}, {"kestrel_sizes", I{1, 16, 20, 20}}, {"kestrel_scales", F{1, 1, 2, 2}}}));
       }},
      {"Resize_linear", [](G& g) {
         unary(g, "Resize", {1, 8, 7, 9},
               attrs({{"mode", std::string("linear")}, {"coordinate_transformation_mode", std::string("half_pixel")},
                      {"kestrel_sizes", I{1, 8, 14, 17}}}));
       }},
      {"SPPF", [](G& g) { unary(g, "kestrel.SPPF", {1, 32, 13, 11}, attrs({{"kernel", int64_t{5}}})); }},
      // YOLO11's attention: the real shape (its tensor-core tactic), a partial last tile of queries and
      // keys (N = 143), a map smaller than one tile, and head sizes only the reference runs.
      {"Attention_yolo11", [](G& g) { attention(g, 2, 2, 32, 64, 20, 20); }},
      {"Attention_partial_tile", [](G& g) { attention(g, 1, 2, 32, 64, 13, 11); }},
      {"Attention_small_map", [](G& g) { attention(g, 3, 4, 32, 64, 2, 3); }},
      {"Attention_other_heads", [](G& g) { attention(g, 1, 3, 16, 24, 6, 5); }},
      // Softmax, MatMul, Gemm, Reduce.
      {"Softmax_axis1", [](G& g) { unary(g, "Softmax", {1, 16, 4, 100}, attrs({{"axis", int64_t{1}}})); }},
      {"Softmax_last", [](G& g) { unary(g, "Softmax", {1, 2, 50, 400}, attrs({{"axis", int64_t{-1}}})); }},
      {"MatMul_batched", [](G& g) {
         const std::string a = g.input("a", {1, 2, 40, 32});
         const std::string b = g.input("b", {1, 2, 32, 50});
         g.node("MatMul", {a, b}, {"y"});
         g.output("y");
       }},
      {"MatMul_broadcast", [](G& g) {
         const std::string a = g.input("a", {3, 2, 17, 9});
         g.node("MatMul", {a, g.rconst("b", {9, 11})}, {"y"});
         g.output("y");
       }},
      {"Gemm", [](G& g) {
         const std::string a = g.input("a", {5, 12});
         g.node("Gemm", {a, g.rconst("b", {7, 12}), g.rconst("c", {7})}, {"y"},
                attrs({{"transB", int64_t{1}}, {"alpha", 0.5f}, {"beta", 2.f}}));
         g.output("y");
       }},
      {"Reduce", [](G& g) {
         const std::string x = g.input("x", {2, 8, 5, 6});
         g.node("ReduceMean", {x}, {"m"}, attrs({{"axes", I{2, 3}}, {"keepdims", int64_t{1}}}));
         g.node("ReduceMax", {x}, {"x1"}, attrs({{"axes", I{1}}, {"keepdims", int64_t{0}}}));
         g.node("ReduceSum", {"x1"}, {"s"}, attrs({{"axes", I{2}}, {"keepdims", int64_t{0}}}));
         g.node("ReduceMin", {x}, {"mn"}, attrs({{"axes", I{1, 2, 3}}, {"keepdims", int64_t{1}}}));
         g.node("Add", {"m", "mn"}, {"y"});
         g.output("y");
         g.output("s");
       }},
      // Fused heads.
      {"DetectV8", [](G& g) {
         const std::string a = g.input("p3", {2, 64 + 80, 8, 8}, -4.f, 4.f);
         const std::string b = g.input("p4", {2, 64 + 80, 4, 4}, -4.f, 4.f);
         const std::string c = g.input("p5", {2, 64 + 80, 2, 2}, -4.f, 4.f);
         g.node("kestrel.DetectV8", {a, b, c}, {"y"},
                attrs({{"reg_max", int64_t{16}}, {"num_classes", int64_t{80}}, {"strides", I{8, 16, 32}}}));
         g.output("y");
       }},
      // A level of 100 anchors: a full 64-anchor tile and a partial one, in one image of three.
      {"DetectV8_partial_tiles", [](G& g) {
         const std::string a = g.input("p3", {3, 64 + 80, 10, 10}, -4.f, 4.f);
         const std::string b = g.input("p4", {3, 64 + 80, 5, 5}, -4.f, 4.f);
         g.node("kestrel.DetectV8", {a, b}, {"y"},
                attrs({{"reg_max", int64_t{16}}, {"num_classes", int64_t{80}}, {"strides", I{8, 16}}}));
         g.output("y");
       }},
      {"DetectV5", [](G& g) {
         const std::string a = g.input("p3", {1, 3 * 85, 8, 8}, -4.f, 4.f);
         const std::string b = g.input("p4", {1, 3 * 85, 4, 4}, -4.f, 4.f);
         g.node("kestrel.DetectV5", {a, b}, {"y"},
                attrs({{"num_classes", int64_t{80}}, {"num_anchors", int64_t{3}}, {"strides", I{8, 16}},
                       {"anchors", F{10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119}}}));
         g.output("y");
       }},
  };
  return c;
}

struct Param {
  size_t index;
  Precision prec;
};

class GpuOp : public ::testing::TestWithParam<Param> {};
class GpuOpHost : public GpuOp {};

G make_case(const Param& p) {
  G g;
  g.nhwc_prefix = p.prec == Precision::FP16;
  cases()[p.index].make(g);
  g.g.infer_shapes();
  return g;
}

// Without a GPU the host side runs: the graph, the CPU reference, lowering, copy elimination, arena
// packing and every layer's set-up from its tensors' metadata (label cpu: test_cuda_host).
TEST_P(GpuOpHost, PlansAndCreatesLayers) {
  const Param p = GetParam();
  G g = make_case(p);
  CpuExecutor cpu(g.g);
  const std::vector<HostTensor> ref = cpu.run(g.feeds);
  ASSERT_FALSE(ref.empty());
  for (const HostTensor& r : ref) EXPECT_TRUE(test::all_finite(r)) << "the CPU reference is not finite";
  BuilderConfig cfg;
  cfg.precision = p.prec;
  bld::BuildPlan plan = bld::lower(g.g, cfg);
  bld::plan_views(plan);
  bld::resolve_layout(plan);
  bld::assemble_weights(plan);
  bld::pack_arena(plan);
  const std::vector<cuda::TensorMeta> metas = bld::metas_of(plan);
  int live = 0;
  for (const bld::BLayer& l : plan.layers) {
    if (l.removed) continue;
    ++live;
    const cuda::LayerSpec s = bld::layer_spec(plan, l, metas);
    EXPECT_NO_THROW(cuda::create_layer(s)) << l.name;
  }
  EXPECT_GT(live, 0);
}

// Every element within the precision's bound (builder/accuracy_bounds.h) of the CPU's FP32 result, and
// the relative L2 over the whole output too.
::testing::AssertionResult within_op_bound(const HostTensor& got_any, const HostTensor& ref, Precision prec) {
  const bld::OpBound b = bld::op_bound(prec);
  const HostTensor got = got_any.dtype() == DType::F32 ? got_any : got_any.cast(DType::F32);
  if (got.numel() != ref.numel()) return ::testing::AssertionFailure() << "element count differs";
  const float* x = got.data<float>();
  const float* r = ref.data<float>();
  double sq = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) sq += static_cast<double>(r[i]) * r[i];
  const double rms = ref.numel() ? std::sqrt(sq / ref.numel()) : 0;
  int64_t bad = 0, worst = -1;
  double worst_ratio = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const double allowed = b.element * (std::fabs(r[i]) + rms);
    const double d = std::fabs(static_cast<double>(x[i]) - r[i]);
    const double ratio = std::isfinite(x[i]) ? (allowed > 0 ? d / allowed : (d > 0 ? INFINITY : 0)) : INFINITY;
    if (!(ratio <= 1)) ++bad;
    if (!(ratio <= worst_ratio)) {
      worst_ratio = ratio;
      worst = i;
    }
  }
  const double err = test::rel_l2(got, ref);
  std::ostringstream m;
  m << "rel. L2 " << err << " (bound " << b.rel_l2 << "), worst element " << worst << ": " << (worst >= 0 ? x[worst] : 0.f)
    << " vs " << (worst >= 0 ? r[worst] : 0.f) << " (" << worst_ratio << " of its bound " << b.element
    << " * (|ref| + rms " << rms << ")), " << bad << " element(s) beyond";
  if (bad == 0 && err <= b.rel_l2) return ::testing::AssertionSuccess() << m.str();
  return ::testing::AssertionFailure() << m.str();
}

// The op bound sees what one relative L2 cannot: on a 51,200-element FP16 output (Conv_large_K's), one
// element wrong by its own size passes a relative L2 of 5e-3 but not the element bound; rounding every
// element to fp16 (what FP16 storage alone does) passes both. Host only (label cpu: test_cuda_host).
TEST(GpuOpBoundHost, OneWrongElementFailsFp16RoundingPasses) {
  size_t index = 0;
  while (std::string(cases()[index].name) != "Conv_large_K") ++index;
  G g = make_case({index, Precision::FP32});
  const HostTensor ref = CpuExecutor(g.g).run(g.feeds)[0];
  ASSERT_EQ(ref.numel(), 51200);
  HostTensor rounded = ref.clone();
  for (float& v : rounded.span<float>()) v = f16_to_f32(f32_to_f16(v));
  EXPECT_TRUE(within_op_bound(rounded, ref, Precision::FP16));
  EXPECT_TRUE(within_op_bound(ref, ref, Precision::FP32));
  HostTensor one = rounded.clone();
  double sq = 0;
  for (float v : ref.span<float>()) sq += static_cast<double>(v) * v;
  const double rms = std::sqrt(sq / static_cast<double>(ref.numel()));
  int64_t typical = 0;  // the element closest to the rms: wrong by its own size, it moves the L2 by 1/sqrt(N)
  for (int64_t i = 0; i < ref.numel(); ++i)
    if (std::fabs(std::fabs(ref.data<float>()[i]) - rms) < std::fabs(std::fabs(ref.data<float>()[typical]) - rms)) typical = i;
  one.data<float>()[typical] = 0;
  EXPECT_LT(test::rel_l2(one, ref), 5e-3) << "the old whole-tensor check would have seen it after all";
  EXPECT_FALSE(within_op_bound(one, ref, Precision::FP16));
  EXPECT_FALSE(within_op_bound(one, ref, Precision::FP32));
  HostTensor nan = ref.clone();
  nan.data<float>()[7] = NAN;
  EXPECT_FALSE(within_op_bound(nan, ref, Precision::FP32));
}

// The copy kernel's 16-byte form (copy.cu): copying whole vectors through cuda::vector_view's views
// moves exactly the elements the element views move, and views that do not run in whole vectors are
// refused. Simulated on the host with the kernels' index arithmetic (label cpu: test_cuda_host).
int host_offset(const cuda::Strided& s, int i) {
  int off = 0;
  for (int d = s.rank - 1; d >= 0; --d) {
    off += i % s.shape[d] * s.stride[d];
    i /= s.shape[d];
  }
  return off;
}

TEST(CopyVectorHost, VectorViewsMoveWhatElementViewsMove) {
  struct Case {
    Shape shape;
    std::vector<int64_t> in_strides, out_strides;
    int lanes;
    bool vectorizes;
  };
  const int64_t N = 2, H = 3, W = 5;
  // Channel slices of channels-last buffers ([N, H, W, C] order in memory: strides of N, H, W, C), fp16.
  auto nhwc = [&](int64_t ld) { return std::vector<int64_t>{H * W * ld, W * ld, ld, 1}; };
  const std::vector<Case> cases = {
      {{N, H, W, 48}, nhwc(64), nhwc(96), 8, true},    // a 48-channel part of 64- and 96-channel buffers
      {{N, H, W, 16}, nhwc(16), nhwc(32), 8, true},
      {{N, H, W, 48}, nhwc(64), nhwc(96), 16, true},   // int8 codes: 16 per vector
      {{N, H, W, 12}, nhwc(12), nhwc(24), 8, false},   // 12 channels: not whole vectors
      {{N, H, W, 16}, nhwc(20), nhwc(32), 8, false},   // a pixel stride of 20: vectors would straddle pixels
      {{N, H, W, 8}, nhwc(8), {8 * H * W, W, 1, H * W}, 8, false},  // channels-last to NCHW: a transpose
  };
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const Case& c = cases[ci];
    SCOPED_TRACE("case " + std::to_string(ci));
    cuda::Strided is = cuda::make_strided(c.shape, c.in_strides), os = cuda::make_strided(c.shape, c.out_strides);
    cuda::optimize_views({&os, &is});
    cuda::Strided vis{}, vos{};
    const bool v = cuda::vector_view(is, c.lanes, &vis) && cuda::vector_view(os, c.lanes, &vos);
    EXPECT_EQ(v, c.vectorizes);
    if (!v) continue;
    const int n = static_cast<int>(shape_numel(c.shape));
    ASSERT_EQ(n % c.lanes, 0);
    int in_span = 0, out_span = 0;
    for (int i = 0; i < n; ++i) {
      in_span = std::max(in_span, host_offset(is, i) + 1);
      out_span = std::max(out_span, host_offset(os, i) + 1);
    }
    std::vector<int> src(static_cast<size_t>(in_span) + c.lanes), by_element(static_cast<size_t>(out_span) + c.lanes, -1);
    for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<int>(i);
    std::vector<int> by_vector = by_element;
    for (int i = 0; i < n; ++i) by_element[host_offset(os, i)] = src[host_offset(is, i)];
    for (int i = 0; i < n / c.lanes; ++i)  // vector i: lanes consecutive elements at lanes * offset
      for (int e = 0; e < c.lanes; ++e) by_vector[host_offset(vos, i) * c.lanes + e] = src[host_offset(vis, i) * c.lanes + e];
    EXPECT_EQ(by_vector, by_element);
  }
}

// Every tactic of every layer, not the one timing happens to pick on this GPU: first every layer's
// reference tactic, then build k forces the k-th candidate of every layer that offers one (the rest run
// their reference), until no layer has another. Unchecked by the tuner and untouched by any timing
// cache (forced tactics are neither timed nor looked up).
TEST_P(GpuOp, EveryTacticMatchesCpu) {
  const Param p = GetParam();
  const OpCase& c = cases()[p.index];
  G g = make_case(p);
  CpuExecutor cpu(g.g);
  const std::vector<HostTensor> ref = cpu.run(g.feeds);
  KESTREL_REQUIRE_GPU();
  BuilderConfig cfg = test::config(p.prec);
  cfg.optimize = false;  // the op under test, not its fused form
  cfg.reference_tactics = true;
  cfg.timing_cache_path.clear();
  Builder builder;
  auto engine = builder.build(g.g, cfg);
  const std::vector<BuildReport::LayerCandidates> cands = builder.report().candidates;
  size_t most = 0;
  for (const auto& lc : cands) most = std::max(most, lc.tactics.size());
  ASSERT_GT(most, 0u) << "the build reports no candidate tactics";
  for (const auto& lc : cands)  // a layer offering a name twice would have it timed twice
    EXPECT_EQ(std::set<std::string>(lc.tactics.begin(), lc.tactics.end()).size(), lc.tactics.size()) << lc.layer;
  int checked = 0, refused = 0;
  for (size_t k = 0; k < most; ++k) {
    BuilderConfig fc = cfg;
    std::string tactics;
    for (const auto& lc : cands) {
      const std::string& t = lc.tactics[std::min(k, lc.tactics.size() - 1)];
      if (k < lc.tactics.size() && k > 0) fc.forced_tactics[lc.layer] = t;
      tactics += " " + lc.layer + ":" + t;
    }
    SCOPED_TRACE("tactics" + tactics);
    std::unique_ptr<Engine> e = k == 0 ? std::move(engine) : Builder().build(g.g, fc);
    for (const auto& l : e->info().layers) {
      const auto f = fc.forced_tactics.find(l.name);
      if (f != fc.forced_tactics.end()) {
        EXPECT_EQ(l.tactic, f->second) << l.name;
      }
    }
    auto ctx = e->create_execution_context();
    std::vector<HostTensor> out;
    try {
      out = test::run_poisoned(*ctx, g.feeds);
    } catch (const Error& err) {
      // A library plan that refuses these strides at run time: the tuner skips it the same way, so it
      // can never be chosen. The reference tactics must run.
      ASSERT_GT(k, 0u) << "the reference tactics failed: " << err.what();
      std::printf("[op] %-26s %s refused at run time:%s (%s)\n", c.name, precision_name(p.prec), tactics.c_str(), err.what());
      ++refused;
      continue;
    }
    ASSERT_EQ(out.size(), ref.size());
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_EQ(out[i].shape(), ref[i].shape());
      const ::testing::AssertionResult r = within_op_bound(out[i], ref[i], p.prec);
      std::printf("[op] %-26s %s output %zu %s |%s\n", c.name, precision_name(p.prec), i, r.message(), tactics.c_str());
      EXPECT_TRUE(r) << c.name << " output " << i;
    }
    ++checked;
  }
  RecordProperty("tactic_sets", checked);
  EXPECT_GT(checked, 0);
  EXPECT_LT(refused, static_cast<int>(most)) << "every tactic set was refused";
}

std::vector<Param> all_params() {
  std::vector<Param> v;
  for (size_t i = 0; i < cases().size(); ++i) {
    v.push_back({i, Precision::FP32});
    v.push_back({i, Precision::FP16});
  }
  return v;
}

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  return std::string(cases()[info.param.index].name) + (info.param.prec == Precision::FP16 ? "_fp16" : "_fp32");
}

INSTANTIATE_TEST_SUITE_P(Ops, GpuOp, ::testing::ValuesIn(all_params()), param_name);
INSTANTIATE_TEST_SUITE_P(Ops, GpuOpHost, ::testing::ValuesIn(all_params()), param_name);

}  // namespace
