// fuse_residual_add: Add(kestrel.Conv output, other) -> the conv's residual input R.
#include <gtest/gtest.h>

#include "graph_builder.h"
#include "kestrel/passes.h"

namespace {
using namespace kestrel;
using namespace kestrel::test;

Graph fused_convs(Graph g) {
  passes::fuse_conv_activation(g);
  return g;
}

TEST(FuseResidualAdd, BottleneckShortcut) {
  // x -> cv1 (SiLU) -> cv2 (SiLU) -> x + cv2: the Bottleneck of YOLOv5/v8.
  GraphBuilder b;
  const auto x = b.input("x", {1, 8, 12, 12});
  const auto y = b.silu(b.conv(b.silu(b.conv(x, 8, 8, 1)), 8, 8, 3, 1, 1, true, "cv2"));
  b.output(b.node("Add", {x, y}, {}, "add"));
  const Graph ref = b.build();
  Graph g = fused_convs(ref);
  EXPECT_EQ(passes::fuse_residual_add(g), 1);
  EXPECT_EQ(count_op(g, "Add"), 0);
  ASSERT_EQ(g.nodes.size(), 2u);
  const Node& cv2 = g.nodes[1];
  ASSERT_EQ(cv2.inputs.size(), 4u);
  EXPECT_EQ(cv2.inputs[3], "x");
  EXPECT_EQ(cv2.attrs.s("activation"), "silu");
  const auto names = fused_names(cv2);  // the conv, its SiLU (Sigmoid, Mul), then the Add
  ASSERT_EQ(names.size(), 4u);
  EXPECT_EQ(names.front(), "Conv:cv2");
  EXPECT_EQ(names.back(), "Add:add");
  // act(conv) + R in the same order as the Add: bit-exact.
  EXPECT_EQ(max_output_error(g, ref, random_inputs(ref)), 0.0);
}

TEST(FuseResidualAdd, ConvWithoutBias) {
  GraphBuilder b;
  const auto x = b.input("x", {1, 4, 6, 6});
  b.output(b.node("Add", {b.conv(x, 4, 4, 3, 1, 1, /*bias=*/false), x}));
  const Graph ref = b.build();
  Graph g = fused_convs(ref);
  EXPECT_EQ(passes::fuse_residual_add(g), 1);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].inputs, (std::vector<std::string>{"x", g.nodes[0].inputs[1], "", "x"}));
  EXPECT_EQ(max_output_error(g, ref, random_inputs(ref)), 0.0);
}

TEST(FuseResidualAdd, BothOperandsConvsPicksTheLaterOne) {
  GraphBuilder b;
  const auto x = b.input("x", {1, 4, 6, 6});
  const auto a = b.conv(x, 4, 4, 3, 1, 1, true, "first");
  const auto c = b.conv(x, 4, 4, 1, 1, 1, true, "second");
  b.output(b.node("Add", {c, a}));
  const Graph ref = b.build();
  Graph g = fused_convs(ref);
  EXPECT_EQ(passes::fuse_residual_add(g), 1);
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[1].name, "second");
  ASSERT_EQ(g.nodes[1].inputs.size(), 4u);
  EXPECT_EQ(g.nodes[1].inputs[3], g.nodes[0].outputs[0]);
  EXPECT_EQ(max_output_error(g, ref, random_inputs(ref)), 0.0);
}

TEST(FuseResidualAdd, ResidualComputedAfterTheConvMovesTheConv) {
  // The only conv operand comes first in node order: the fused conv must run after the residual.
  GraphBuilder b;
  const auto x = b.input("x", {1, 4, 6, 6});
  const auto c = b.conv(x, 4, 4, 3, 1, 1, true, "conv");
  const auto r = b.node("Tanh", {b.node("Relu", {x})});
  b.output(b.node("Add", {c, r}));
  const Graph ref = b.build();
  Graph g = fused_convs(ref);
  EXPECT_EQ(passes::fuse_residual_add(g), 1);
  ASSERT_EQ(g.nodes.size(), 3u);
  EXPECT_EQ(g.nodes.back().op, "kestrel.Conv");
  EXPECT_EQ(max_output_error(g, ref, random_inputs(ref)), 0.0);
}

TEST(FuseResidualAdd, ConvOutputWithAnotherReaderIsNotFused) {
  GraphBuilder b;
  const auto x = b.input("x", {1, 4, 6, 6});
  const auto c = b.conv(x, 4, 4, 3);
  b.output(b.node("Add", {c, x}));
  b.output(b.node("Relu", {c}));
  Graph g = fused_convs(b.build());
  EXPECT_EQ(passes::fuse_residual_add(g), 0);
  EXPECT_EQ(count_op(g, "Add"), 1);
}

TEST(FuseResidualAdd, BroadcastingAddIsNotFused) {
  GraphBuilder b;
  const auto x = b.input("x", {1, 4, 6, 6});
  const auto s = b.input("s", {1, 4, 1, 1});
  b.output(b.node("Add", {b.conv(x, 4, 4, 3), s}));
  Graph g = fused_convs(b.build());
  EXPECT_EQ(passes::fuse_residual_add(g), 0);
}

TEST(FuseResidualAdd, PlainConvIsNotFused) {
  // Only kestrel.Conv carries a residual input; a plain ONNX Conv keeps its Add.
  GraphBuilder b;
  const auto x = b.input("x", {1, 4, 6, 6});
  b.output(b.node("Add", {b.conv(x, 4, 4, 3), x}));
  Graph g = b.build();
  EXPECT_EQ(passes::fuse_residual_add(g), 0);
}

TEST(FuseResidualAdd, ConvWithAResidualAlreadyIsNotFusedTwice) {
  GraphBuilder b;
  const auto x = b.input("x", {1, 4, 6, 6});
  const auto y = b.node("Add", {b.conv(x, 4, 4, 3), x});
  b.output(b.node("Add", {y, x}));
  const Graph ref = b.build();
  Graph g = fused_convs(ref);
  EXPECT_EQ(passes::fuse_residual_add(g), 1);
  EXPECT_EQ(count_op(g, "Add"), 1);
  EXPECT_EQ(max_output_error(g, ref, random_inputs(ref)), 0.0);
}

}  // namespace
