// fuse_attention: YOLO11's C2PSA attention (Reshape, Split into q / k / v, Transpose, MatMul, scale Mul,
// Softmax, Transpose, MatMul, Reshape, and v's Reshape for the positional conv) -> kestrel.Attention.
#include <gtest/gtest.h>

#include <cmath>

#include "graph_builder.h"
#include "kestrel/passes.h"
#include "kestrel/zoo.h"

namespace {
using namespace kestrel;
using namespace kestrel::test;
using I = std::vector<int64_t>;

struct Block {
  GraphBuilder b;
  std::string v;  // the Split's v output
};

// Ultralytics' Attention module as exported: qkv conv -> view(B, nh, 2 kd + hd, N).split(...) ->
// (q^T k) * scale -> softmax -> (v @ attn^T).view(B, C, H, W) + pe(v.reshape(B, C, H, W)) -> proj.
Block attention_block(int64_t B, int64_t nh, int64_t kd, int64_t hd, int64_t H, int64_t W, bool pe = true) {
  Block r;
  GraphBuilder& b = r.b;
  const int64_t C = nh * hd, N = H * W;
  const auto x = b.input("x", {B, C, H, W});
  const auto qkv = b.conv(x, C, nh * (2 * kd + hd), 1, 1, 1, true, "/model.10/m/m.0/attn/qkv/conv/Conv");
  const auto heads = b.node("Reshape", {qkv}, attrs({{"shape", I{B, nh, 2 * kd + hd, N}}}), "/model.10/m/m.0/attn/Reshape");
  const auto qkv3 = b.node_n("Split", {heads}, attrs({{"axis", int64_t{2}}, {"split", I{kd, kd, hd}}}), 3,
                             "/model.10/m/m.0/attn/Split");
  r.v = qkv3[2];
  const auto qt = b.node("Transpose", {qkv3[0]}, attrs({{"perm", I{0, 1, 3, 2}}}), "/model.10/m/m.0/attn/Transpose");
  const auto s = b.node("MatMul", {qt, qkv3[1]}, {}, "/model.10/m/m.0/attn/MatMul");
  const auto sc = b.constant("scale", HostTensor::from_f32({}, {1.f / std::sqrt(static_cast<float>(kd))}));
  const auto ss = b.node("Mul", {s, sc}, {}, "/model.10/m/m.0/attn/Mul");
  const auto p = b.node("Softmax", {ss}, attrs({{"axis", int64_t{-1}}}), "/model.10/m/m.0/attn/Softmax");
  const auto pt = b.node("Transpose", {p}, attrs({{"perm", I{0, 1, 3, 2}}}), "/model.10/m/m.0/attn/Transpose_1");
  const auto o = b.node("MatMul", {qkv3[2], pt}, {}, "/model.10/m/m.0/attn/MatMul_1");
  const auto y = b.node("Reshape", {o}, attrs({{"shape", I{B, C, H, W}}}), "/model.10/m/m.0/attn/Reshape_1");
  std::string sum = y;
  if (pe) {
    const auto vi = b.node("Reshape", {qkv3[2]}, attrs({{"shape", I{B, C, H, W}}}), "/model.10/m/m.0/attn/Reshape_2");
    sum = b.node("Add", {y, b.conv(vi, C, C, 3, 1, C, true, "/model.10/m/m.0/attn/pe/conv/Conv")}, {}, "/model.10/m/m.0/attn/Add");
  }
  b.output(b.conv(sum, C, C, 1, 1, 1, true, "/model.10/m/m.0/attn/proj/conv/Conv"));
  return r;
}

TEST(FuseAttention, FusesTheC2psaAttention) {
  for (bool pe : {true, false}) {
    Block blk = attention_block(2, 2, 16, 32, 5, 7, pe);
    const Graph ref = blk.b.build();
    Graph g = ref;
    ASSERT_EQ(passes::fuse_attention(g), 1) << "pe " << pe;
    for (const char* op : {"Reshape", "Split", "Transpose", "MatMul", "Mul", "Softmax"}) EXPECT_EQ(count_op(g, op), 0) << op;
    const Node* a = find_node(g, "kestrel.Attention");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->name, "/model.10/m/m.0/attn/Attention");
    EXPECT_EQ(a->attrs.i("num_heads"), 2);
    EXPECT_EQ(a->attrs.i("key_dim"), 16);
    EXPECT_EQ(a->attrs.i("head_dim"), 32);
    EXPECT_FLOAT_EQ(a->attrs.f("scale"), 0.25f);
    EXPECT_EQ(a->outputs.size(), pe ? 2u : 1u);
    EXPECT_EQ(fused_names(*a).size(), pe ? 10u : 9u);
    EXPECT_EQ(g.value(a->outputs[0]).shape, (Shape{2, 64, 5, 7}));
    // The same arithmetic in another order (the CPU kernel never forms the score matrix).
    EXPECT_LT(max_output_error(g, ref, random_inputs(ref)), 1e-5);
  }
}

TEST(FuseAttention, ValueWithAnotherReaderIsNotFused) {
  Block blk = attention_block(1, 2, 16, 32, 4, 4);
  blk.b.output(blk.v);
  Graph g = blk.b.build();
  EXPECT_EQ(passes::fuse_attention(g), 0);
  EXPECT_EQ(count_op(g, "Softmax"), 1);
}

TEST(FuseAttention, ScoresAsAnOutputAreNotFused) {
  Block blk = attention_block(1, 2, 16, 32, 4, 4);
  Graph g = blk.b.build();
  for (const Node& n : g.nodes)
    if (n.op == "Softmax") g.outputs.push_back(n.outputs[0]);
  EXPECT_EQ(passes::fuse_attention(g), 0);
}

TEST(FuseAttention, SoftmaxOverQueriesIsNotFused) {
  Block blk = attention_block(1, 2, 16, 32, 4, 4);
  Graph g = blk.b.build();
  for (Node& n : g.nodes)
    if (n.op == "Softmax") n.attrs.set("axis", int64_t{2});
  g.infer_shapes();
  EXPECT_EQ(passes::fuse_attention(g), 0);
}

// Every YOLO11 size has one C2PSA attention (kd 32, hd 64: Ultralytics' head_dim = 64, key_dim = 32),
// and the fused graph computes what the optimized one does.
TEST(FuseAttention, EveryYolo11SizeHasOne) {
  for (const char* m : {"yolo11n", "yolo11s", "yolo11m"}) {
    zoo::BuildOptions o;
    o.imgsz = 128;  // small, so the CPU runs it in a moment; the attention sees a 4 x 4 map
    Graph ref = zoo::build(m, o);
    passes::optimize(ref);
    Graph g = ref;
    ASSERT_EQ(passes::fuse_attention(g), 1) << m;
    const Node* a = find_node(g, "kestrel.Attention");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->attrs.i("key_dim"), 32);
    EXPECT_EQ(a->attrs.i("head_dim"), 64);
    EXPECT_EQ(a->outputs.size(), 2u) << "the positional conv's input";
    EXPECT_LT(max_output_error(g, ref, random_inputs(ref, 7, 0.f, 1.f)), 1e-5) << m;
  }
  Graph v8 = zoo::build("yolov8n");
  passes::optimize(v8);
  EXPECT_EQ(passes::fuse_attention(v8), 0);
}

}  // namespace
