// fuse_conv_activation: Conv + activation -> kestrel.Conv; the rest of the convs -> kestrel.Conv "none".
#include <gtest/gtest.h>

#include "graph_builder.h"
#include "kestrel/passes.h"

namespace {
using namespace kestrel;
using namespace kestrel::test;

struct ActCase {
  const char* onnx_op;  // "SiLU" builds Mul(x, Sigmoid(x)); "SiLU_swapped" Mul(Sigmoid(x), x)
  Attributes attrs;
  const char* activation;
  float alpha, beta;
};

class FuseActivation : public ::testing::TestWithParam<ActCase> {};

TEST_P(FuseActivation, FusesAndMatches) {
  const ActCase& c = GetParam();
  GraphBuilder b;
  const auto x = b.input("x", {1, 5, 10, 10});
  const auto y = b.conv(x, 5, 6, 3, 1, 1, true, "conv");
  std::string z;
  if (std::string(c.onnx_op) == "SiLU") z = b.node("Mul", {y, b.node("Sigmoid", {y}, {}, "sig")}, {}, "mul");
  else if (std::string(c.onnx_op) == "SiLU_swapped") z = b.node("Mul", {b.node("Sigmoid", {y}, {}, "sig"), y}, {}, "mul");
  else z = b.node(c.onnx_op, {y}, c.attrs, "act");
  b.output(b.conv(z, 6, 3, 1, 1, 1, true, "head"));  // plain conv: becomes kestrel.Conv "none"
  const Graph ref = b.build();
  Graph g = ref;
  int with_act = -1;
  EXPECT_EQ(passes::fuse_conv_activation(g, &with_act), 2);
  EXPECT_EQ(with_act, 1);
  ASSERT_EQ(g.nodes.size(), 2u);
  const Node& f = g.nodes[0];
  EXPECT_EQ(f.op, "kestrel.Conv");
  EXPECT_EQ(f.attrs.s("activation"), c.activation);
  EXPECT_FLOAT_EQ(f.attrs.f("alpha"), c.alpha);
  EXPECT_FLOAT_EQ(f.attrs.f("beta"), c.beta);
  const auto names = fused_names(f);
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names[0], "Conv:conv");
  EXPECT_EQ(names.size(), std::string(c.onnx_op).rfind("SiLU", 0) == 0 ? 3u : 2u);
  EXPECT_EQ(g.nodes[1].op, "kestrel.Conv");
  EXPECT_EQ(g.nodes[1].attrs.s("activation"), "none");
  // Same kernels, same expressions: the fused graph is bit-exact.
  EXPECT_EQ(max_output_error(g, ref, random_inputs(ref, 3, -3.f, 3.f)), 0.0);
}

INSTANTIATE_TEST_SUITE_P(
    Activations, FuseActivation,
    ::testing::Values(ActCase{"Relu", {}, "relu", 0, 0}, ActCase{"LeakyRelu", attrs({{"alpha", 0.1f}}), "leaky_relu", 0.1f, 0},
                      ActCase{"LeakyRelu", {}, "leaky_relu", 0.01f, 0}, ActCase{"Sigmoid", {}, "sigmoid", 0, 0},
                      ActCase{"HardSwish", {}, "hard_swish", 0, 0},
                      ActCase{"HardSigmoid", attrs({{"alpha", 0.3f}, {"beta", 0.4f}}), "hard_sigmoid", 0.3f, 0.4f},
                      ActCase{"HardSigmoid", {}, "hard_sigmoid", 0.2f, 0.5f}, ActCase{"Tanh", {}, "tanh", 0, 0},
                      ActCase{"SiLU", {}, "silu", 0, 0}, ActCase{"SiLU_swapped", {}, "silu", 0, 0}),
    [](const auto& info) { return std::string(info.param.onnx_op) + "_" + std::to_string(info.index); });

TEST(FuseConvActivation, ConvOutputWithTwoReadersKeepsItsActivation) {
  GraphBuilder b;
  const auto x = b.input("x", {1, 4, 8, 8});
  const auto y = b.conv(x, 4, 4, 3);
  b.output(b.node("Relu", {y}));
  b.output(b.node("Add", {y, x}));
  const Graph ref = b.build();
  Graph g = ref;
  int with_act = -1;
  EXPECT_EQ(passes::fuse_conv_activation(g, &with_act), 1);
  EXPECT_EQ(with_act, 0);
  EXPECT_EQ(count_op(g, "Relu"), 1);
  EXPECT_EQ(find_node(g, "kestrel.Conv")->attrs.s("activation"), "none");
  EXPECT_EQ(max_output_error(g, ref, random_inputs(ref)), 0.0);
}

TEST(FuseConvActivation, ConvOutputThatIsAGraphOutputIsNotFused) {
  GraphBuilder b;
  const auto x = b.input("x", {1, 4, 8, 8});
  const auto y = b.conv(x, 4, 4, 3);
  b.output(y);
  b.output(b.node("Sigmoid", {y}));
  Graph g = b.build();
  int with_act = -1;
  passes::fuse_conv_activation(g, &with_act);
  EXPECT_EQ(with_act, 0);
  EXPECT_EQ(count_op(g, "Sigmoid"), 1);
}

TEST(FuseConvActivation, SiluWhoseSigmoidHasAnotherReaderIsNotFused) {
  GraphBuilder b;
  const auto x = b.input("x", {1, 4, 8, 8});
  const auto y = b.conv(x, 4, 4, 3);
  const auto s = b.node("Sigmoid", {y});
  b.output(b.node("Mul", {y, s}));
  b.output(b.node("Relu", {s}));
  const Graph ref = b.build();
  Graph g = ref;
  int with_act = -1;
  passes::fuse_conv_activation(g, &with_act);
  EXPECT_EQ(with_act, 0);
  EXPECT_EQ(count_op(g, "Sigmoid"), 1);
  EXPECT_EQ(count_op(g, "Mul"), 1);
  EXPECT_EQ(max_output_error(g, ref, random_inputs(ref)), 0.0);
}

TEST(FuseConvActivation, MulOfConvAndAnUnrelatedSigmoidIsNotSilu) {
  GraphBuilder b;
  const auto x = b.input("x", {1, 4, 8, 8});
  const auto y = b.conv(x, 4, 4, 3);
  const auto s = b.node("Sigmoid", {b.node("Relu", {x})});
  b.output(b.node("Mul", {y, s}));
  Graph g = b.build();
  int with_act = -1;
  passes::fuse_conv_activation(g, &with_act);
  EXPECT_EQ(with_act, 0);
  EXPECT_EQ(count_op(g, "Mul"), 1);
}

TEST(FuseConvActivation, ConvWithComputedWeightsIsLeftAlone) {
  GraphBuilder b;
  const auto x = b.input("x", {1, 4, 8, 8});
  const auto w = b.input("w", {4, 4, 3, 3});
  b.output(b.node("Relu", {b.node("Conv", {x, w}, attrs({{"pads", std::vector<int64_t>{1, 1, 1, 1}}}))}));
  Graph g = b.build();
  EXPECT_EQ(passes::fuse_conv_activation(g), 0);
  EXPECT_EQ(count_op(g, "Conv"), 1);
  EXPECT_EQ(count_op(g, "Relu"), 1);
}

TEST(FuseConvActivation, GeometryIsSpelledOut) {
  // An exporter may leave out pads/strides/kernel_shape or use auto_pad; kestrel.Conv always has them.
  GraphBuilder b;
  const auto x = b.input("x", {1, 3, 9, 10});
  const auto w = b.random_constant("w", {4, 3, 3, 3});
  b.output(b.node("Conv", {x, w}, attrs({{"auto_pad", std::string("SAME_UPPER")}, {"strides", std::vector<int64_t>{2, 2}}})));
  const Graph ref = b.build();
  Graph g = ref;
  EXPECT_EQ(passes::fuse_conv_activation(g), 1);
  const Node& n = g.nodes[0];
  EXPECT_FALSE(n.attrs.has("auto_pad"));
  EXPECT_EQ(n.attrs.ints("kernel_shape"), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(n.attrs.ints("strides"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(n.attrs.ints("dilations"), (std::vector<int64_t>{1, 1}));
  // SAME_UPPER: H 9 -> 5 pads 1 + 1; W 10 -> 5 needs one column, at the end. Order: begins, then ends.
  EXPECT_EQ(n.attrs.ints("pads"), (std::vector<int64_t>{1, 0, 1, 1}));
  EXPECT_EQ(n.attrs.i("group"), 1);
  EXPECT_EQ(g.value(n.outputs[0]).shape, ref.value(ref.outputs[0]).shape);
  EXPECT_EQ(max_output_error(g, ref, random_inputs(ref)), 0.0);
}

}  // namespace
