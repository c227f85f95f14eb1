// The Q/DQ rewrite on tiny graphs: structure, parameters, and CPU outputs against a hand-quantized
// computation.
#include <gtest/gtest.h>

#include <cstdio>

#include "kestrel/cpu_backend.h"
#include "quant_test_util.h"

namespace {
using namespace kestrel;

// x [1,2,5,5] -> kestrel.Conv(2 -> 3, 3x3, pad 1, bias, no activation) -> y
Graph one_conv() {
  test::GraphBuilder b;
  b.output(b.conv(b.input("x", {1, 2, 5, 5}), 2, 3, 3, 1, 1, true, "conv"));
  Graph g = b.build();
  passes::optimize(g);
  return g;
}

const Node* producer(const Graph& g, const std::string& v) {
  for (auto& n : g.nodes)
    for (auto& o : n.outputs)
      if (o == v) return &n;
  return nullptr;
}

TEST(QdqRewrite, ConvInputAndWeightsGetQdq) {
  Graph g = one_conv();
  const HostTensor w = *g.value(g.nodes[0].inputs[1]).constant;
  quant::QuantOptions o;
  o.activation_scales = {{"x", 0.05f}};
  quant::quantize_graph(g, o);
  ASSERT_EQ(test::count_op(g, "QuantizeLinear"), 1);
  ASSERT_EQ(test::count_op(g, "DequantizeLinear"), 2);
  const Node& conv = *test::find_node(g, "kestrel.Conv");
  EXPECT_EQ(conv.attrs.s("kestrel_precision"), "int8");
  EXPECT_EQ(conv.attrs.s("kestrel_output_precision"), "fp16");
  // X: x -> Q -> DQ -> conv, per tensor, int8 zero point 0.
  const Node* xdq = producer(g, conv.inputs[0]);
  ASSERT_TRUE(xdq && xdq->op == "DequantizeLinear");
  const Node* xq = producer(g, xdq->inputs[0]);
  ASSERT_TRUE(xq && xq->op == "QuantizeLinear");
  EXPECT_EQ(xq->inputs[0], "x");
  EXPECT_EQ(g.value(xq->inputs[1]).constant->to_f32(), std::vector<float>{0.05f});
  EXPECT_EQ(g.value(xq->inputs[2]).constant->dtype(), DType::I8);
  EXPECT_EQ(g.value(xq->inputs[2]).constant->to_i64(), std::vector<int64_t>{0});
  EXPECT_EQ(g.value(xq->outputs[0]).dtype, DType::I8);
  // W: int8 constant -> DQ(axis 0, per-channel scales) -> conv.
  const Node* wdq = producer(g, conv.inputs[1]);
  ASSERT_TRUE(wdq && wdq->op == "DequantizeLinear");
  EXPECT_EQ(wdq->attrs.i("axis"), 0);
  const auto expected = quant::quantize_weights(w);
  const HostTensor& codes = *g.value(wdq->inputs[0]).constant;
  EXPECT_EQ(codes.dtype(), DType::I8);
  EXPECT_EQ(std::vector<int8_t>(codes.data<int8_t>(), codes.data<int8_t>() + codes.numel()),
            std::vector<int8_t>(expected.q.data<int8_t>(), expected.q.data<int8_t>() + expected.q.numel()));
  EXPECT_EQ(g.value(wdq->inputs[1]).constant->to_f32(), expected.scales);
  EXPECT_EQ(g.value(wdq->inputs[2]).constant->to_i64(), std::vector<int64_t>(3, 0));
  EXPECT_NO_THROW(quant::check_qdq_placement(g));
}

TEST(QdqRewrite, CpuOutputsEqualHandQuantizedConv) {
  Graph g = one_conv();
  const Graph fp32 = g;
  const HostTensor w = *g.value(g.nodes[0].inputs[1]).constant;
  const auto bias = g.value(g.nodes[0].inputs[2]).constant->to_f32();
  const float s = 0.03f;
  quant::QuantOptions o;
  o.activation_scales = {{"x", s}};
  quant::quantize_graph(g, o);
  const HostTensor x = test::random_tensor({1, 2, 5, 5}, 11, -3.f, 3.f);  // saturates beyond +-3.84
  const HostTensor y = CpuExecutor(g).run({x})[0];

  // By hand: dequantize(quantize(x)) and dequantize(W codes), then the convolution in double.
  const auto qw = quant::quantize_weights(w);
  for (int m = 0; m < 3; ++m)
    for (int oy = 0; oy < 5; ++oy)
      for (int ox = 0; ox < 5; ++ox) {
        double acc = bias[m];
        for (int c = 0; c < 2; ++c)
          for (int ky = 0; ky < 3; ++ky)
            for (int kx = 0; kx < 3; ++kx) {
              const int iy = oy + ky - 1, ix = ox + kx - 1;
              if (iy < 0 || iy >= 5 || ix < 0 || ix >= 5) continue;
              const float xd = static_cast<float>(test::quantize_ref(x.data<float>()[(c * 5 + iy) * 5 + ix], s)) * s;
              const float wd = static_cast<float>(qw.q.data<int8_t>()[((m * 2 + c) * 3 + ky) * 3 + kx]) * qw.scales[m];
              acc += static_cast<double>(xd) * wd;
            }
        EXPECT_NEAR(y.data<float>()[(m * 5 + oy) * 5 + ox], acc, 1e-5) << m << " " << oy << " " << ox;
      }
  // And the quantized graph is not the FP32 one (the test would pass vacuously otherwise).
  EXPECT_GT(test::rel_l2(y, CpuExecutor(fp32).run({x})[0]), 1e-4);
}

TEST(QdqRewrite, OnePairPerQuantizedTensor) {
  // a's output feeds two INT8 convs: one Q/DQ pair serves both.
  test::GraphBuilder b;
  const auto a = b.silu(b.conv(b.input("x", {1, 3, 8, 8}), 3, 4, 3, 1, 1, true, "a"));
  b.output(b.conv(a, 4, 4, 1, 1, 1, true, "b"));
  b.output(b.conv(a, 4, 2, 3, 1, 1, true, "c"));
  Graph g = b.build();
  passes::optimize(g);
  quant::QuantOptions o;
  for (auto& t : quant::quantizable_tensors(g)) o.activation_scales[t] = 0.1f;
  ASSERT_EQ(o.activation_scales.size(), 2u);
  quant::quantize_graph(g, o);
  EXPECT_EQ(test::count_op(g, "QuantizeLinear"), 2);
  EXPECT_EQ(test::count_op(g, "DequantizeLinear"), 2 + 3);
  EXPECT_EQ(test::node_named(g, "b")->inputs[0], test::node_named(g, "c")->inputs[0]);
}

// A C2f-like block, optimized: a = conv(x); b = a + conv "m"(a) (residual); c = Concat(a, b); d = conv(c).
struct C2fLike {
  Graph g;
  std::string a, c;  // the values a and c
};
C2fLike c2f_like() {
  test::GraphBuilder gb;
  C2fLike r;
  r.a = gb.silu(gb.conv(gb.input("x", {1, 4, 6, 6}), 4, 4, 1, 1, 1, true, "a"));
  const auto b = gb.node("Add", {r.a, gb.silu(gb.conv(r.a, 4, 4, 3, 1, 1, true, "m"))});
  Attributes axis;
  axis.set("axis", int64_t{1});
  r.c = gb.node("Concat", {r.a, b}, axis);
  gb.output(gb.conv(r.c, 8, 4, 1, 1, 1, true, "d"));
  r.g = gb.build();
  passes::optimize(r.g);
  return r;
}

// The concat and its inputs share one scale (their largest: 0.2), and m adds a's codes (residual Q/DQ).
TEST(QdqRewrite, DataMovementSharesScalesAndResidualsAreQuantized) {
  const C2fLike block = c2f_like();
  Graph g = block.g;
  const std::string& c = block.c;
  const Graph fp32 = g;
  quant::QuantOptions o;
  for (auto& t : quant::quantizable_tensors(g)) o.activation_scales[t] = 0.1f;
  ASSERT_EQ(o.activation_scales.size(), 3u);  // x, a, c
  o.activation_scales[c] = 0.2f;
  quant::quantize_graph(g, o);
  const Node& m = *test::node_named(g, "m");
  ASSERT_EQ(m.inputs.size(), 4u) << "the residual add is fused into m";
  const Node* rdq = producer(g, m.inputs[3]);
  ASSERT_TRUE(rdq && rdq->op == "DequantizeLinear");
  EXPECT_EQ(rdq->outputs[0], m.inputs[0]) << "one pair for a: m's input and its residual";
  for (const Node& n : g.nodes)
    if (n.op == "QuantizeLinear") {
      const float want = n.inputs[0] == "x" ? 0.1f : 0.2f;  // a joined c's group
      EXPECT_EQ(g.value(n.inputs[1]).constant->to_f32(), std::vector<float>{want}) << n.inputs[0];
    }
  EXPECT_NO_THROW(quant::check_qdq_placement(g));
  // The simulation (int8 arithmetic, fp16 storage) agrees with the Q/DQ graph run as fake quantization
  // in float, residual codes included, far more closely than either agrees with FP32.
  const HostTensor x = test::random_tensor({1, 4, 6, 6}, 5, -2.f, 2.f);
  const HostTensor y = quant::simulate(g, {x})[0];
  const double vs_fake = test::rel_l2(y, CpuExecutor(g).run({x})[0]);
  const double vs_fp32 = test::rel_l2(y, CpuExecutor(fp32).run({x})[0]);
  std::printf("simulation vs fake quantization %.2e, vs fp32 %.2e\n", vs_fake, vs_fp32);
  EXPECT_LT(vs_fake, 2e-3);
  EXPECT_GT(vs_fp32, 10 * vs_fake);
}

TEST(QdqRewrite, AlreadyQuantizedGraphIsRefused) {
  Graph g = one_conv();
  quant::QuantOptions o;
  o.activation_scales = {{"x", 0.05f}};
  quant::quantize_graph(g, o);
  EXPECT_NE(test::error_of([&] { quant::quantize_graph(g, o); }).find("already quantized"), std::string::npos);
}

// An INT8 conv turned back to FP16 (what the builder does where FP16 was timed faster): it reads the
// float tensors again, its weights are the codes times their scales, and the Q/DQ pair only it read goes.
TEST(QdqRewrite, RunInFp16ReadsFloatTensorsAndDequantizedWeights) {
  const C2fLike block = c2f_like();
  Graph g = block.g;
  const std::string& a = block.a;
  const Graph fp32 = g;
  const HostTensor w = *g.value(test::node_named(g, "m")->inputs[1]).constant;
  quant::QuantOptions o;
  for (auto& t : quant::quantizable_tensors(g)) o.activation_scales[t] = 0.1f;
  quant::quantize_graph(g, o);
  const Graph qdq = g;
  ASSERT_EQ(test::count_op(g, "QuantizeLinear"), 3);  // x, a, the concat
  ASSERT_EQ(test::count_op(g, "DequantizeLinear"), 3 + 3);

  quant::run_in_fp16(g, {{"m", "measured"}});
  const Node& m = *test::node_named(g, "m");
  EXPECT_EQ(m.attrs.s("kestrel_precision"), "fp16");
  EXPECT_EQ(m.attrs.s("kestrel_precision_reason"), "measured");
  EXPECT_EQ(m.attrs.s("kestrel_output_precision", "none"), "none");
  EXPECT_EQ(m.inputs[0], a);
  ASSERT_EQ(m.inputs.size(), 4u);
  EXPECT_EQ(m.inputs[3], a) << "the residual reads the float tensor too";
  const HostTensor& wf = *g.value(m.inputs[1]).constant;
  const auto qw = quant::quantize_weights(w);
  ASSERT_EQ(wf.shape(), w.shape());
  const int64_t per = w.numel() / w.shape()[0];
  for (int64_t i = 0; i < w.numel(); ++i)
    ASSERT_EQ(wf.data<float>()[i], static_cast<float>(qw.q.data<int8_t>()[i]) * qw.scales[i / per]) << i;
  EXPECT_EQ(test::count_op(g, "QuantizeLinear"), 2) << "a's pair had no other reader";
  EXPECT_EQ(test::count_op(g, "DequantizeLinear"), 2 + 2);
  EXPECT_EQ(test::node_named(g, "d")->attrs.s("kestrel_precision"), "int8");
  EXPECT_NO_THROW(quant::check_qdq_placement(g));
  // m no longer quantizes its input: the output moves towards FP32.
  const HostTensor x = test::random_tensor({1, 4, 6, 6}, 5, -2.f, 2.f);
  const HostTensor y_fp32 = CpuExecutor(fp32).run({x})[0];
  const double before = test::rel_l2(CpuExecutor(qdq).run({x})[0], y_fp32);
  const double after = test::rel_l2(CpuExecutor(g).run({x})[0], y_fp32);
  std::printf("vs fp32: all int8 %.3e, m in fp16 %.3e\n", before, after);
  EXPECT_LT(after, before);
  EXPECT_GT(after, 0.0);

  // Only INT8 convs of the graph.
  EXPECT_NE(test::error_of([&] { quant::run_in_fp16(g, {{"m", "again"}}); }).find("is not an INT8 conv"), std::string::npos);
  EXPECT_NE(test::error_of([&] { quant::run_in_fp16(g, {{"nope", "x"}}); }).find("not in the graph"), std::string::npos);
}

}  // namespace
