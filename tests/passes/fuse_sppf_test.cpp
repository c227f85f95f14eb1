// fuse_sppf: three chained size-preserving MaxPools concatenated with their input -> kestrel.SPPF.
#include <gtest/gtest.h>

#include "graph_builder.h"
#include "kestrel/passes.h"

namespace {
using namespace kestrel;
using namespace kestrel::test;

Attributes pool(int64_t k, int64_t stride = 1) {
  return attrs({{"kernel_shape", std::vector<int64_t>{k, k}},
                {"strides", std::vector<int64_t>{stride, stride}},
                {"pads", std::vector<int64_t>{k / 2, k / 2, k / 2, k / 2}}});
}

// x -> cv1 -> SPPF chain -> Concat -> cv2, as in YOLOv8's SPPF module.
GraphBuilder sppf_model(int64_t k, std::string* p1 = nullptr) {
  GraphBuilder b;
  const auto x = b.input("x", {2, 6, 11, 13});
  const auto c = b.conv(x, 6, 4, 1);
  const auto m1 = b.node("MaxPool", {c}, pool(k), "/model.9/m/MaxPool");
  const auto m2 = b.node("MaxPool", {m1}, pool(k), "/model.9/m_1/MaxPool");
  const auto m3 = b.node("MaxPool", {m2}, pool(k), "/model.9/m_2/MaxPool");
  const auto cat = b.node("Concat", {c, m1, m2, m3}, attrs({{"axis", int64_t{1}}}), "/model.9/Concat");
  b.output(b.conv(cat, 16, 4, 1));
  if (p1) *p1 = m1;
  return b;
}

TEST(FuseSppf, Fuses) {
  for (int64_t k : {3, 5}) {
    GraphBuilder b = sppf_model(k);
    const Graph ref = b.build();
    Graph g = ref;
    EXPECT_EQ(passes::fuse_sppf(g), 1);
    EXPECT_EQ(count_op(g, "MaxPool"), 0);
    EXPECT_EQ(count_op(g, "Concat"), 0);
    const Node* s = find_node(g, "kestrel.SPPF");
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->name, "/model.9/SPPF");
    EXPECT_EQ(s->attrs.i("kernel"), k);
    EXPECT_EQ(fused_names(*s).size(), 4u);
    EXPECT_EQ(max_output_error(g, ref, random_inputs(ref)), 0.0);  // max is exact
  }
}

TEST(FuseSppf, IntermediatePoolWithAnotherReaderIsNotFused) {
  std::string m1;
  GraphBuilder b = sppf_model(5, &m1);
  b.output(m1);
  Graph g = b.build();
  EXPECT_EQ(passes::fuse_sppf(g), 0);
  EXPECT_EQ(count_op(g, "MaxPool"), 3);
}

TEST(FuseSppf, OtherPoolsAreNotFused) {
  // Size-preserving, so the Concat is valid, but not the pool kestrel.SPPF computes.
  for (int variant = 0; variant < 2; ++variant) {
    GraphBuilder b;
    const auto x = b.input("x", {1, 4, 9, 9});
    const auto m1 = b.node("MaxPool", {x}, pool(5));
    Attributes second = pool(variant == 0 ? 3 : 5);
    if (variant == 1) {  // dilated 5x5 window, padded to keep the size
      second.set("dilations", std::vector<int64_t>{2, 2});
      second.set("pads", std::vector<int64_t>{4, 4, 4, 4});
    }
    const auto m2 = b.node("MaxPool", {m1}, second);
    const auto m3 = b.node("MaxPool", {m2}, pool(5));
    b.output(b.node("Concat", {x, m1, m2, m3}, attrs({{"axis", int64_t{1}}})));
    Graph g = b.build();
    EXPECT_EQ(passes::fuse_sppf(g), 0) << "variant " << variant;
  }
}

TEST(FuseSppf, ConcatInAnotherOrderIsNotFused) {
  GraphBuilder b;
  const auto x = b.input("x", {1, 4, 9, 9});
  const auto m1 = b.node("MaxPool", {x}, pool(5));
  const auto m2 = b.node("MaxPool", {m1}, pool(5));
  const auto m3 = b.node("MaxPool", {m2}, pool(5));
  b.output(b.node("Concat", {x, m2, m1, m3}, attrs({{"axis", int64_t{1}}})));
  Graph g = b.build();
  EXPECT_EQ(passes::fuse_sppf(g), 0);
}

}  // namespace
