// Mixed precision: --layer-precision parsing and globbing, the default policy, the recorded reasons.
#include <gtest/gtest.h>

#include "../passes/detect_heads.h"
#include "quant/internal.h"
#include "quant_test_util.h"

namespace {
using namespace kestrel;

std::map<std::string, float> unit_scales(const Graph& g) {
  std::map<std::string, float> s;
  for (auto& t : quant::quantizable_tensors(g)) s[t] = 0.02f;
  return s;
}

std::string prec(const Graph& g, const std::string& node) {
  return test::node_named(g, node)->attrs.s("kestrel_precision");
}
std::string reason(const Graph& g, const std::string& node) {
  return test::node_named(g, node)->attrs.s("kestrel_precision_reason");
}

TEST(LayerRules, Parse) {
  const auto rules = quant::parse_layer_rules("/model.22/*:fp16,/model.0/conv/Conv:fp32,a:b:int8");
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_EQ(rules[0].pattern, "/model.22/*");
  EXPECT_EQ(rules[0].precision, quant::LayerPrecision::FP16);
  EXPECT_EQ(rules[1].precision, quant::LayerPrecision::FP32);
  EXPECT_EQ(rules[2].pattern, "a:b");  // the precision follows the last ':'
  EXPECT_THROW(quant::parse_layer_rules("conv"), UsageError);
  EXPECT_THROW(quant::parse_layer_rules("conv:int4"), UsageError);
  EXPECT_THROW(quant::parse_layer_rules(":fp16"), UsageError);
  EXPECT_THROW(quant::parse_layer_rules(""), UsageError);
}

TEST(Policy, DefaultKeepsHeadOutputConvsAndDecodeInFp16) {
  test::MiniHead h;
  Graph g = test::mini_v8(h);
  passes::optimize(g);
  ASSERT_NE(test::find_node(g, "kestrel.DetectV8"), nullptr);
  const auto head = quant::detail::head_output_convs(g);
  EXPECT_EQ(head.size(), 2u);
  quant::QuantOptions o;
  o.activation_scales = unit_scales(g);
  const quant::QuantReport r = quant::quantize_graph(g, o);
  EXPECT_EQ(r.int8, 0);
  EXPECT_EQ(r.fp16, 2);
  const Node* detect = test::find_node(g, "kestrel.DetectV8");
  EXPECT_EQ(detect->attrs.s("kestrel_precision"), "fp16");
  EXPECT_EQ(detect->attrs.s("kestrel_precision_reason"), "default policy: detection decode");
  for (auto& l : r.layers)
    if (l.op == "kestrel.Conv") {
      EXPECT_EQ(l.reason, "default policy: detection head output conv");
    }
}

TEST(Policy, WithoutTheDefaultPolicyEveryConvIsInt8) {
  test::MiniHead h;
  Graph g = test::mini_v8(h);
  passes::optimize(g);
  quant::QuantOptions o;
  o.activation_scales = unit_scales(g);
  o.default_policy = false;
  const quant::QuantReport r = quant::quantize_graph(g, o);
  EXPECT_EQ(r.int8, 2);
  EXPECT_EQ(test::find_node(g, "kestrel.DetectV8")->attrs.s("kestrel_precision"), "fp16");  // no int8 kernel
}

TEST(Policy, RulesGlobOnNamesAndLaterRulesWin) {
  Graph g = test::tiny_fused_graph();
  quant::QuantOptions o;
  o.activation_scales = unit_scales(g);
  o.rules = quant::parse_layer_rules("[ab]:fp32,a:fp16");
  const quant::QuantReport r = quant::quantize_graph(g, o);
  EXPECT_EQ(prec(g, "a"), "fp16");
  EXPECT_EQ(reason(g, "a"), "--layer-precision a");
  EXPECT_EQ(prec(g, "b"), "fp32");
  EXPECT_EQ(reason(g, "b"), "--layer-precision [ab]");
  EXPECT_EQ(prec(g, "c"), "int8");
  EXPECT_EQ(r.int8, 1);
  EXPECT_EQ(r.fp16, 1);
  EXPECT_EQ(r.fp32, 1);
  EXPECT_NE(r.summary().find("fp32  b  (--layer-precision [ab])"), std::string::npos) << r.summary();
}

TEST(Policy, PatternMatchingNothingIsAnError) {
  Graph g = test::tiny_fused_graph();
  quant::QuantOptions o;
  o.activation_scales = unit_scales(g);
  o.rules = quant::parse_layer_rules("/model.99/*:fp16");
  const std::string msg = test::error_of([&] { quant::quantize_graph(g, o); });
  EXPECT_NE(msg.find("'/model.99/*' matches no layer"), std::string::npos) << msg;
}

TEST(Policy, MissingScaleIsNamed) {
  Graph g = test::tiny_fused_graph();
  quant::QuantOptions o;  // no calibration at all
  const std::string msg = test::error_of([&] { quant::quantize_graph(g, o); });
  EXPECT_NE(msg.find("no calibration scale for tensor 'images' (input of conv 'a')"), std::string::npos) << msg;
}

TEST(Policy, UnoptimizedGraphIsRefused) {
  test::GraphBuilder b;
  b.output(b.conv(b.input("x", {1, 3, 8, 8}), 3, 4, 3));
  Graph g = b.build();
  quant::QuantOptions o;
  EXPECT_NE(test::error_of([&] { quant::quantize_graph(g, o); }).find("run passes::optimize first"), std::string::npos);
}

}  // namespace

namespace {
// images [1,3,64,64] -> stem s (stride 2) -> b (4) -> c (4) -> d (8) -> e (16) -> f (16), all 3x3 SiLU.
Graph strided_chain() {
  test::GraphBuilder b;
  std::string x = b.input("images", {1, 3, 64, 64});
  x = b.silu(b.conv(x, 3, 8, 3, 2, 1, true, "s"));
  x = b.silu(b.conv(x, 8, 8, 3, 2, 1, true, "b"));
  x = b.silu(b.conv(x, 8, 8, 3, 1, 1, true, "c"));
  x = b.silu(b.conv(x, 8, 8, 3, 2, 1, true, "d"));
  x = b.silu(b.conv(x, 8, 8, 3, 2, 1, true, "e"));
  b.output(b.conv(x, 8, 8, 3, 1, 1, true, "f"));
  Graph g = b.build();
  passes::optimize(g);
  return g;
}
}  // namespace

TEST(Policy, HighResolutionConvsAreTheEarlyOnesUpToTheStrideExceptTheStem) {
  const Graph g = strided_chain();
  using V = std::vector<std::pair<std::string, int64_t>>;
  // s reads the image, b the stride-2 tensor: both stay out.
  EXPECT_EQ(quant::detail::high_resolution_convs(g, 8), (V{{"c", 4}, {"d", 8}}));
  EXPECT_EQ(quant::detail::high_resolution_convs(g, 4), (V{{"c", 4}}));
  EXPECT_TRUE(quant::detail::high_resolution_convs(g, 0).empty());
  // Nothing coarser than stride 16: no early part to set apart.
  EXPECT_TRUE(quant::detail::high_resolution_convs(g, 16).empty());
  EXPECT_TRUE(quant::detail::high_resolution_convs(test::tiny_fused_graph(16), 8).empty());
}

TEST(Policy, DefaultKeepsTheHighResolutionBackboneInFp16) {
  Graph g = strided_chain();
  quant::QuantOptions o;
  o.activation_scales = unit_scales(g);
  const quant::QuantReport r = quant::quantize_graph(g, o);
  EXPECT_EQ(r.int8, 4);
  EXPECT_EQ(r.fp16, 2);
  for (const char* n : {"s", "b", "e", "f"}) EXPECT_EQ(prec(g, n), "int8") << n;
  for (const char* n : {"c", "d"}) EXPECT_EQ(prec(g, n), "fp16") << n;
  EXPECT_EQ(reason(g, "c"), "default policy: high-resolution backbone conv (output stride 4)");
  EXPECT_EQ(reason(g, "d"), "default policy: high-resolution backbone conv (output stride 8)");

  Graph off = strided_chain();
  o.high_res_fp16_stride = 0;
  EXPECT_EQ(quant::quantize_graph(off, o).int8, 6);
  Graph no_policy = strided_chain();
  o.high_res_fp16_stride = 8;
  o.default_policy = false;
  EXPECT_EQ(quant::quantize_graph(no_policy, o).int8, 6);
  // A rule still wins over the policy.
  Graph ruled = strided_chain();
  o.default_policy = true;
  o.rules = quant::parse_layer_rules("c:int8");
  quant::quantize_graph(ruled, o);
  EXPECT_EQ(prec(ruled, "c"), "int8");
  EXPECT_EQ(prec(ruled, "d"), "fp16");
}
