// fold_batchnorm: Conv -> BatchNormalization becomes one Conv with rescaled weights and bias.
#include <gtest/gtest.h>

#include "graph_builder.h"
#include "kestrel/passes.h"

namespace {
using namespace kestrel;
using namespace kestrel::test;

// BN with non-trivial statistics, so a wrong formula cannot pass by accident.
std::string batchnorm(GraphBuilder& b, const std::string& x, int64_t c, const std::string& name = "bn") {
  return b.node("BatchNormalization",
                {x, b.random_constant(name + ".scale", {c}, 0.5f, 1.5f), b.random_constant(name + ".bias", {c}),
                 b.random_constant(name + ".mean", {c}), b.random_constant(name + ".var", {c}, 0.2f, 2.f)},
                attrs({{"epsilon", 1e-3f}}), name);
}

struct Case {
  const char* name;
  int64_t cin, cout, k, stride, group;
  bool bias;
};

class FoldBatchnorm : public ::testing::TestWithParam<Case> {};

TEST_P(FoldBatchnorm, MatchesUnfusedGraph) {
  const Case c = GetParam();
  GraphBuilder b;
  const auto x = b.input("x", {2, c.cin, 9, 11});
  const auto y = batchnorm(b, b.conv(x, c.cin, c.cout, c.k, c.stride, c.group, c.bias, "conv"), c.cout);
  b.output(b.node("Relu", {y}));
  const Graph ref = b.build();
  Graph g = ref;
  EXPECT_EQ(passes::fold_batchnorm(g), 1);
  EXPECT_EQ(count_op(g, "BatchNormalization"), 0);
  ASSERT_EQ(count_op(g, "Conv"), 1);
  EXPECT_EQ(fused_names(*find_node(g, "Conv")),
            (std::vector<std::string>{"Conv:conv", "BatchNormalization:bn"}));
  const double err = max_output_error(g, ref, random_inputs(ref));
  std::printf("%s: relative L2 %.3g\n", c.name, err);
  EXPECT_LT(err, 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Convs, FoldBatchnorm,
                         ::testing::Values(Case{"k3_bias", 4, 8, 3, 1, 1, true}, Case{"k1_nobias", 6, 5, 1, 1, 1, false},
                                           Case{"k3_stride2", 3, 16, 3, 2, 1, true},
                                           Case{"depthwise", 8, 8, 3, 1, 8, false}, Case{"grouped", 8, 4, 3, 1, 2, true}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(FoldBatchnorm, SkipsConvOutputWithAnotherReader) {
  GraphBuilder b;
  const auto x = b.input("x", {1, 4, 8, 8});
  const auto c = b.conv(x, 4, 4, 3);
  b.output(batchnorm(b, c, 4));
  b.output(b.node("Relu", {c}));  // the pre-BN tensor is still needed
  Graph g = b.build();
  EXPECT_EQ(passes::fold_batchnorm(g), 0);
  EXPECT_EQ(count_op(g, "BatchNormalization"), 1);
}

TEST(FoldBatchnorm, SkipsConvOutputThatIsAGraphOutput) {
  GraphBuilder b;
  const auto x = b.input("x", {1, 4, 8, 8});
  const auto c = b.conv(x, 4, 4, 3);
  b.output(batchnorm(b, c, 4));
  b.output(c);
  Graph g = b.build();
  EXPECT_EQ(passes::fold_batchnorm(g), 0);
}

TEST(FoldBatchnorm, SkipsBatchnormNotAfterAConv) {
  GraphBuilder b;
  const auto x = b.input("x", {1, 4, 8, 8});
  b.output(batchnorm(b, b.node("Relu", {x}), 4));
  Graph g = b.build();
  EXPECT_EQ(passes::fold_batchnorm(g), 0);
}

TEST(FoldBatchnorm, LeavesSharedWeightsIntact) {
  // Two convs read the same weight constant; folding one BN must not rescale the other conv.
  GraphBuilder b;
  const auto x = b.input("x", {1, 4, 8, 8});
  const auto w = b.random_constant("shared.w", {4, 4, 3, 3});
  Attributes a = attrs({{"kernel_shape", std::vector<int64_t>{3, 3}}, {"pads", std::vector<int64_t>{1, 1, 1, 1}}});
  b.output(batchnorm(b, b.node("Conv", {x, w}, a), 4));
  b.output(b.node("Conv", {x, w}, a));
  const Graph ref = b.build();
  Graph g = ref;
  EXPECT_EQ(passes::fold_batchnorm(g), 1);
  EXPECT_LT(max_output_error(g, ref, random_inputs(ref)), 1e-6);
}

}  // namespace
