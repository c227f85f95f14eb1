// Q/DQ placements Kestrel cannot run in INT8 are refused with one line naming the node.
#include <gtest/gtest.h>

#include "onnx/exporter.h"
#include "quant_test_util.h"

namespace {
using namespace kestrel;

struct Qdq {
  std::string scale, zp;
};
Qdq params(test::GraphBuilder& b, const std::string& tag, DType zp_type = DType::I8) {
  return {b.constant(tag + "_s", HostTensor::scalar_f32(0.1f)), b.constant(tag + "_z", HostTensor(zp_type, {}))};
}

void expect_refused(const Graph& g, const std::string& part) {
  const std::string msg = test::error_of([&] { quant::check_qdq_placement(g); });
  EXPECT_NE(msg.find(part), std::string::npos) << "message: " << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
}

TEST(QdqCheck, QuantizeWithoutDequantize) {
  test::GraphBuilder b;
  const Qdq p = params(b, "q");
  const auto q = b.node("QuantizeLinear", {b.input("x", {1, 2, 4, 4}), p.scale, p.zp}, {}, "lonely_q");
  b.output(b.node("Identity", {q}, {}, "reader"));
  expect_refused(b.build(), "QuantizeLinear node 'lonely_q' feeds Identity node 'reader'");
}

TEST(QdqCheck, QuantizeAsGraphOutput) {
  test::GraphBuilder b;
  const Qdq p = params(b, "q");
  b.output(b.node("QuantizeLinear", {b.input("x", {1, 2, 4, 4}), p.scale, p.zp}, {}, "out_q"));
  expect_refused(b.build(), "'out_q' is a graph output");
}

TEST(QdqCheck, DequantizeIntoAnOpWithoutInt8Kernel) {
  test::GraphBuilder b;
  const Qdq p = params(b, "q");
  const auto q = b.node("QuantizeLinear", {b.input("x", {1, 2, 4, 4}), p.scale, p.zp});
  const auto dq = b.node("DequantizeLinear", {q, p.scale, p.zp}, {}, "dq");
  b.output(b.node("MaxPool", {dq}, test::attrs({{"kernel_shape", std::vector<int64_t>{2, 2}}}), "pool"));
  expect_refused(b.build(), "DequantizeLinear node 'dq' feeds MaxPool node 'pool': Kestrel runs INT8 only in convolutions");
}

TEST(QdqCheck, Uint8IsRefused) {
  test::GraphBuilder b;
  const Qdq p = params(b, "q", DType::U8);
  const auto q = b.node("QuantizeLinear", {b.input("x", {1, 2, 4, 4}), p.scale, p.zp}, {}, "q8");
  b.output(b.node("DequantizeLinear", {q, p.scale, p.zp}));
  expect_refused(b.build(), "QuantizeLinear node 'q8' is u8: only symmetric int8");
}

TEST(QdqCheck, QuantizedInputWithFloatWeights) {
  test::GraphBuilder b;
  b.output(b.conv(b.input("x", {1, 2, 5, 5}), 2, 3, 3, 1, 1, true, "conv"));
  Graph g = b.build();
  passes::optimize(g);
  const std::string float_w = g.nodes[0].inputs[1];
  quant::QuantOptions o;
  o.activation_scales = {{"x", 0.05f}};
  quant::quantize_graph(g, o);
  for (auto& n : g.nodes)
    if (n.op == "kestrel.Conv") n.inputs[1] = float_w;
  // Keep the float weights alive for the check (quantize_graph pruned them).
  g.add_value(Value{float_w, DType::F32, {3, 2, 3, 3}, true, test::random_tensor({3, 2, 3, 3}, 1)});
  expect_refused(g, "conv 'conv' has a quantized input but float weights");
}

TEST(QdqCheck, ImportedModelWithDqBeforeMaxPool) {
  // The same bad placement in an ONNX file from "another tool" is refused at load time.
  test::GraphBuilder b;
  const Qdq p = params(b, "q");
  const auto q = b.node("QuantizeLinear", {b.input("x", {1, 2, 4, 4}), p.scale, p.zp}, {}, "q");
  const auto dq = b.node("DequantizeLinear", {q, p.scale, p.zp}, {}, "dq");
  b.output(b.node("MaxPool", {dq}, test::attrs({{"kernel_shape", std::vector<int64_t>{2, 2}}}), "pool"));
  const std::string bytes = export_onnx_bytes(b.build());
  const std::string msg = test::error_of([&] { quant::load_qdq_onnx_bytes(bytes); });
  EXPECT_NE(msg.find("DequantizeLinear node 'dq' feeds MaxPool node 'pool'"), std::string::npos) << msg;
}

}  // namespace
