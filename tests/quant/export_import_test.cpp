// ONNX export and re-import: plain graphs compute the same; Q/DQ models keep every scale.
#include <gtest/gtest.h>

#include "../passes/detect_heads.h"
#include "kestrel/cpu_backend.h"
#include "kestrel/onnx.h"
#include "onnx/exporter.h"
#include "quant_test_util.h"
#include "tiny_onnx.h"

namespace {
using namespace kestrel;

void expect_same_outputs(const Graph& a, const Graph& b, uint32_t seed = 3) {
  const auto inputs = test::random_inputs(a, seed, 0.f, 1.f);
  const auto ya = CpuExecutor(a).run(inputs), yb = CpuExecutor(b).run(inputs);
  ASSERT_EQ(ya.size(), yb.size());
  for (size_t i = 0; i < ya.size(); ++i) {
    ASSERT_EQ(ya[i].shape(), yb[i].shape());
    EXPECT_EQ(0, std::memcmp(ya[i].raw(), yb[i].raw(), ya[i].nbytes())) << "output " << i;
  }
}

TEST(Export, ImportedModelRoundTrips) {
  const std::string bytes = test::tiny_conv_model();
  const Graph g = import_onnx_bytes(bytes.data(), bytes.size());
  const std::string out = export_onnx_bytes(g);
  const Graph back = import_onnx_bytes(out.data(), out.size());
  EXPECT_EQ(back.opset, 17);
  expect_same_outputs(g, back);
}

TEST(Export, CanonicalizedParametersBecomeInputsAgain) {
  // The v8 decode has Reshape(shape), Split(split), Slice(starts/ends/axes), Softmax, Transpose, Concat.
  test::MiniHead h;
  const Graph g = test::mini_v8(h);
  const std::string out = export_onnx_bytes(g);
  const Graph back = import_onnx_bytes(out.data(), out.size());
  expect_same_outputs(g, back);
}

TEST(Export, FusedOpsAreRefused) {
  const Graph g = test::tiny_fused_graph();
  EXPECT_NE(test::error_of([&] { export_onnx_bytes(g); }).find("kestrel.Conv is a Kestrel fused op"),
            std::string::npos);
}

// The export path of `kestrel quantize`: the plain graph (BN folded, nothing fused) gets the Q/DQ the
// fused graph was given.
struct Quantized {
  Graph plain, fused;
};
Quantized quantize_tiny() {
  test::GraphBuilder b;
  const std::string x = b.input("images", {1, 3, 16, 16});
  const std::string a = b.silu(b.conv(x, 3, 8, 3, 1, 1, true, "a"));
  const std::string r = b.node("Add", {b.silu(b.conv(a, 8, 8, 3, 1, 1, true, "b")), a});  // residual
  b.output(b.conv(r, 8, 4, 1, 1, 1, true, "c"));
  Quantized q{b.build(), {}};
  passes::OptimizeOptions fold_only;
  fold_only.fuse_conv_activation = fold_only.fuse_residual_add = fold_only.fuse_sppf = fold_only.fuse_detect_head = false;
  passes::optimize(q.plain, fold_only);
  q.fused = q.plain;
  passes::optimize(q.fused);
  quant::QuantOptions o;
  float s = 0.01f;
  for (auto& t : quant::quantizable_tensors(q.fused)) o.activation_scales[t] = s *= 1.7f;
  o.rules = quant::parse_layer_rules("c:fp32");
  quant::quantize_graph(q.fused, o);
  quant::apply_to_plain_graph(q.plain, q.fused);
  return q;
}

// conv name -> (input scale, weight scales, weight codes) of every INT8 conv.
struct ConvQuant {
  std::vector<float> x_scale, w_scale;
  std::vector<int64_t> codes;
  bool operator==(const ConvQuant&) const = default;
};
std::map<std::string, ConvQuant> conv_quant(const Graph& g) {
  const auto prod = g.producers();
  std::map<std::string, ConvQuant> out;
  for (auto& n : g.nodes) {
    if (n.op != "kestrel.Conv" || n.attrs.s("kestrel_precision") != "int8") continue;
    const Node& xdq = g.nodes[prod.at(n.inputs[0])];
    const Node& wdq = g.nodes[prod.at(n.inputs[1])];
    out[n.name] = {g.value(xdq.inputs[1]).constant->to_f32(), g.value(wdq.inputs[1]).constant->to_f32(),
                   g.value(wdq.inputs[0]).constant->to_i64()};
  }
  return out;
}

TEST(QdqExport, PlainGraphCarriesTheFusedGraphsQuantization) {
  const Quantized q = quantize_tiny();
  EXPECT_EQ(test::count_op(q.plain, "QuantizeLinear"), 2);    // a and b; c stays fp32
  EXPECT_EQ(test::count_op(q.plain, "DequantizeLinear"), 4);  // two activations, two weights
  EXPECT_EQ(test::count_op(q.plain, "Conv"), 3);
  // Standard ONNX only: the fake-quantized plain graph computes what the fused Q/DQ graph computes.
  const auto inputs = test::random_inputs(q.fused, 5, 0.f, 1.f);
  EXPECT_LT(test::rel_l2(CpuExecutor(q.plain).run(inputs)[0], CpuExecutor(q.fused).run(inputs)[0]), 1e-6);
}

TEST(QdqExport, ReimportKeepsScalesPrecisionsAndOutputs) {
  Quantized q = quantize_tiny();
  q.plain.metadata["stride"] = "32";  // model metadata (Ultralytics' names, stride) travels along
  ExportOptions eo;
  eo.metadata[quant::kPrecisionMetadataKey] = quant::encode_precisions(q.fused);
  const std::string bytes = export_onnx_bytes(q.plain, eo);
  const Graph back = quant::load_qdq_onnx_bytes(bytes);

  EXPECT_EQ(back.metadata.at("stride"), "32");
  EXPECT_EQ(back.metadata.count(quant::kPrecisionMetadataKey), 0u);  // applied to the layers, then dropped
  const auto before = conv_quant(q.fused), after = conv_quant(back);
  EXPECT_EQ(before.size(), 2u);
  EXPECT_EQ(after, before);  // bit-identical scales and codes
  // Quantized weights still count as the model's parameters (through their DequantizeLinear).
  EXPECT_EQ(back.parameter_count(), q.fused.parameter_count());
  EXPECT_GT(back.parameter_count(), 0);
  for (auto& n : q.fused.nodes) {
    if (n.op != "kestrel.Conv") continue;
    const Node* m = test::node_named(back, n.name);
    ASSERT_NE(m, nullptr) << n.name;
    EXPECT_EQ(m->attrs.s("kestrel_precision"), n.attrs.s("kestrel_precision")) << n.name;
    EXPECT_EQ(m->attrs.s("kestrel_precision_reason"), n.attrs.s("kestrel_precision_reason")) << n.name;
  }
  expect_same_outputs(q.fused, back, 7);
  const auto inputs = test::random_inputs(q.fused, 8, 0.f, 1.f);
  const auto ya = quant::simulate(q.fused, inputs)[0], yb = quant::simulate(back, inputs)[0];
  EXPECT_EQ(0, std::memcmp(ya.raw(), yb.raw(), ya.nbytes()));
}

TEST(QdqImport, ActivationOnlyQdqGetsWeightsQuantizedHere) {
  // Another tool's model with Q/DQ on the conv input but float weights.
  test::GraphBuilder b;
  const auto s = b.constant("s", HostTensor::scalar_f32(0.02f));
  const auto z = b.constant("z", HostTensor(DType::I8, {}));
  const auto q = b.node("QuantizeLinear", {b.input("x", {1, 3, 8, 8}), s, z});
  b.output(b.conv(b.node("DequantizeLinear", {q, s, z}), 3, 4, 3, 1, 1, true, "conv"));
  const Graph g = quant::load_qdq_onnx_bytes(export_onnx_bytes(b.build()));
  const Node* conv = test::node_named(g, "conv");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->attrs.s("kestrel_precision"), "int8");
  EXPECT_EQ(conv->attrs.s("kestrel_precision_reason"), "imported Q/DQ; weights quantized per channel by Kestrel");
  EXPECT_EQ(conv_quant(g).at("conv").x_scale, std::vector<float>{0.02f});
}

}  // namespace
