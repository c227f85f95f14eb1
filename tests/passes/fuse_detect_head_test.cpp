// fuse_detect_head on miniature YOLO heads: fires on the exported decode forms, reads the parameters
// from the graph, and refuses (leaving the graph alone) whenever the fused op would compute something else.
#include <gtest/gtest.h>

#include "detect_heads.h"
#include "kestrel/passes.h"

namespace {
using namespace kestrel;
using namespace kestrel::test;

TEST(FuseDetectHead, V8) {
  for (const int64_t imgsz : {64, 96}) {
    MiniHead h;
    h.imgsz = imgsz;
    h.strides = {8, 16, 32};
    const Graph ref = mini_v8(h);
    Graph g = ref;
    EXPECT_EQ(passes::fuse_detect_head(g), 1);
    ASSERT_EQ(g.nodes.size(), 4u) << "three head convs and the decode";
    const Node& d = g.nodes.back();
    EXPECT_EQ(d.op, "kestrel.DetectV8");
    EXPECT_EQ(d.name, "DetectV8");  // no common module scope among the mini graph's node names
    EXPECT_EQ(d.attrs.i("reg_max"), 4);
    EXPECT_EQ(d.attrs.i("num_classes"), 3);
    EXPECT_EQ(d.attrs.ints("strides"), (std::vector<int64_t>{8, 16, 32}));
    EXPECT_EQ(d.inputs.size(), 3u);
    EXPECT_GT(fused_names(d).size(), 15u);
    const double err = max_output_error(g, ref, random_inputs(ref));
    std::printf("mini v8 at %ld: relative L2 %.3g\n", static_cast<long>(imgsz), err);
    EXPECT_LT(err, 1e-6);
  }
}

TEST(FuseDetectHead, V5ReadsTheAnchorsFromTheGraph) {
  MiniHead h;
  h.anchors = {12, 14, 20, 31, 33, 60, 70, 41};
  const Graph ref = mini_v5(h);
  Graph g = ref;
  EXPECT_EQ(passes::fuse_detect_head(g), 1);
  const Node* d = find_node(g, "kestrel.DetectV5");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->attrs.i("num_classes"), 3);
  EXPECT_EQ(d->attrs.i("num_anchors"), 2);
  EXPECT_EQ(d->attrs.ints("strides"), (std::vector<int64_t>{8, 16}));
  EXPECT_EQ(d->attrs.floats("anchors"), h.anchors);
  EXPECT_EQ(g.nodes.size(), 3u);
  const double err = max_output_error(g, ref, random_inputs(ref));
  std::printf("mini v5: relative L2 %.3g\n", err);
  EXPECT_LT(err, 1e-6);
}

TEST(FuseDetectHead, V8WithOtherAnchorPointsIsLeftAlone) {
  MiniHead h;
  h.anchor_offset = 0.25f;  // not the (x + 0.5, y + 0.5) kestrel.DetectV8 computes
  Graph g = mini_v8(h);
  const size_t before = g.nodes.size();
  EXPECT_EQ(passes::fuse_detect_head(g), 0);
  EXPECT_EQ(g.nodes.size(), before);
}

TEST(FuseDetectHead, V5WithIntegerGridIsLeftAlone) {
  MiniHead h;
  h.grid_offset = 0.f;  // an older export form (2s - 0.5 + grid): a different formula, so no fusion
  Graph g = mini_v5(h);
  const size_t before = g.nodes.size();
  EXPECT_EQ(passes::fuse_detect_head(g), 0);
  EXPECT_EQ(g.nodes.size(), before);
}

TEST(FuseDetectHead, DecodeValueReadElsewhereIsLeftAlone) {
  Graph g = mini_v8(MiniHead{});
  // Also expose the class logits: the decode sub-graph can then not be removed.
  for (auto& n : g.nodes)
    if (n.op == "Split") g.outputs.push_back(n.outputs[1]);
  g.infer_shapes();
  EXPECT_EQ(passes::fuse_detect_head(g), 0);
  EXPECT_EQ(count_op(g, "kestrel.DetectV8"), 0);
}

TEST(FuseDetectHead, NonHeadOutputIsLeftAlone) {
  GraphBuilder b;
  const auto x = b.input("images", {1, 3, 32, 32});
  b.output(b.node("Relu", {b.conv(x, 3, 8, 3, 2)}));
  Graph g = b.build();
  EXPECT_EQ(passes::fuse_detect_head(g), 0);
}

}  // namespace
