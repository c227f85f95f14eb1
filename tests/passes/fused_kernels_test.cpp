// The CPU kernels of the fused ops beyond what the pass tests cover: batches (the fused detect ops
// serve dynamic-batch models, whose exported decode has the batch baked in) and validation.
#include <gtest/gtest.h>

#include <cstring>

#include "backend/cpu/kernel.h"
#include "detect_heads.h"
#include "ir/op_registry.h"
#include "kestrel/passes.h"

namespace {
using namespace kestrel;
using namespace kestrel::test;

// Image b of a batched tensor.
HostTensor item(const HostTensor& t, int64_t b) {
  Shape s = t.shape();
  s[0] = 1;
  HostTensor out(t.dtype(), s);
  std::memcpy(out.raw(), static_cast<const char*>(t.raw()) + b * out.nbytes(), out.nbytes());
  return out;
}

// The graph g (fused op(s) fed by its inputs) rebound to batch 2.
Graph rebatched(Graph g, int64_t batch) {
  for (auto& in : g.inputs) g.value(in).shape[0] = batch;
  g.infer_shapes();
  return g;
}

void expect_batch_consistent(const Graph& single) {
  const Graph batched = rebatched(single, 2);
  const auto xs = random_inputs(batched, 11, -4.f, 4.f);
  const auto y = run_graph(batched, xs);
  for (int64_t b = 0; b < 2; ++b) {
    std::vector<HostTensor> xb;
    for (auto& x : xs) xb.push_back(item(x, b));
    const auto yb = run_graph(single, xb);
    for (size_t k = 0; k < y.size(); ++k) EXPECT_EQ(rel_l2(item(y[k], b), yb[k]), 0.0) << "image " << b;
  }
}

// The fused node alone, its inputs as graph inputs.
Graph only_fused(const Graph& optimized, const std::string& op) {
  const Node* n = find_node(optimized, op);
  EXPECT_NE(n, nullptr);
  GraphBuilder b;
  for (auto& in : n->inputs) b.input(in, optimized.value(in).shape);
  for (auto& [k, v] : optimized.values())
    if (v.is_constant()) b.constant(k, *v.constant);
  b.graph().nodes.push_back(*n);
  b.graph().add_value(Value{n->outputs[0], DType::F32, {}, false, std::nullopt});
  b.output(n->outputs[0]);
  return b.build();
}

TEST(FusedKernels, DetectV8Batches) {
  Graph g = mini_v8(MiniHead{});
  ASSERT_EQ(passes::fuse_detect_head(g), 1);
  expect_batch_consistent(only_fused(g, "kestrel.DetectV8"));
}

TEST(FusedKernels, DetectV5Batches) {
  Graph g = mini_v5(MiniHead{});
  ASSERT_EQ(passes::fuse_detect_head(g), 1);
  expect_batch_consistent(only_fused(g, "kestrel.DetectV5"));
}

TEST(FusedKernels, SppfAndConvBatches) {
  GraphBuilder b;
  const auto x = b.input("x", {1, 4, 7, 9});
  const auto c = b.conv(x, 4, 4, 3);
  b.output(b.node("kestrel.SPPF", {b.node("Add", {c, x})}, attrs({{"kernel", int64_t{5}}})));
  Graph g = b.build();
  passes::fuse_conv_activation(g);
  passes::fuse_residual_add(g);
  ASSERT_EQ(g.nodes.size(), 2u);
  expect_batch_consistent(g);
}

TEST(FusedKernels, ConvRejectsAResidualOfAnotherShape) {
  GraphBuilder b;
  const auto x = b.input("x", {1, 4, 8, 8});
  const auto r = b.input("r", {1, 4, 4, 4});
  b.output(b.node("kestrel.Conv", {x, b.random_constant("w", {4, 4, 3, 3}), "", r},
                  attrs({{"kernel_shape", std::vector<int64_t>{3, 3}},
                         {"pads", std::vector<int64_t>{1, 1, 1, 1}},
                         {"activation", std::string("relu")}})));
  EXPECT_THROW(b.build(), Error);
}

TEST(FusedKernels, ConvRejectsAnUnknownActivation) {
  GraphBuilder b;
  const auto x = b.input("x", {1, 4, 8, 8});
  b.output(b.node("kestrel.Conv", {x, b.random_constant("w", {4, 4, 1, 1})},
                  attrs({{"activation", std::string("gelu")}})));
  EXPECT_THROW(b.build(), Error);
}

TEST(FusedKernels, EveryFusedOpHasShapeInferenceAndACpuKernel) {
  for (const char* op : {"kestrel.Conv", "kestrel.SPPF", "kestrel.DetectV8", "kestrel.DetectV5"}) {
    EXPECT_NE(find_op(op), nullptr) << op;
    EXPECT_NE(cpu::find_kernel(op), nullptr) << op;
  }
}

}  // namespace
