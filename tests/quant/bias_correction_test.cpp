// Empirical bias correction (quant::correct_biases): the shift it measures is the hand-derived one, the
// window sums respect padding and stride, each conv is corrected for its own error on the input the
// simulation gives it, and the export carries the corrected bias.
#include <gtest/gtest.h>

#include <random>

#include "kestrel/cpu_backend.h"
#include "quant_test_util.h"

namespace {
using namespace kestrel;
using test::GraphBuilder;

HostTensor random_input(const Shape& s, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  HostTensor t(DType::F32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

// Quantizes `g` (fused FP32) with every conv INT8, FP32 elsewhere, the given activation scales.
Graph quantized(const Graph& g, const std::map<std::string, float>& scales) {
  Graph q = g;
  quant::QuantOptions o;
  o.activation_scales = scales;
  o.float_precision = quant::LayerPrecision::FP32;
  quant::quantize_graph(q, o);
  return q;
}

// Per output channel, the mean over images and positions of a - b ([1, M, H, W] tensors).
std::vector<double> channel_mean_difference(const std::vector<HostTensor>& a, const std::vector<HostTensor>& b) {
  const int64_t m = a.at(0).dim(1), hw = a.at(0).dim(2) * a.at(0).dim(3);
  std::vector<double> d(static_cast<size_t>(m), 0.0);
  for (size_t i = 0; i < a.size(); ++i)
    for (int64_t c = 0; c < m; ++c)
      for (int64_t p = 0; p < hw; ++p)
        d[static_cast<size_t>(c)] += static_cast<double>(a[i].data<float>()[c * hw + p]) - b[i].data<float>()[c * hw + p];
  for (double& v : d) v /= static_cast<double>(a.size() * hw);
  return d;
}

std::vector<HostTensor> run_fp32(const Graph& g, const std::vector<HostTensor>& inputs) {
  CpuExecutor exec(g);
  std::vector<HostTensor> out;
  for (auto& in : inputs) out.push_back(exec.run({in}).at(0));
  return out;
}

std::vector<HostTensor> run_int8(const Graph& q, const std::vector<HostTensor>& inputs) {
  quant::Simulator sim(q);
  std::vector<HostTensor> out;
  for (auto& in : inputs) out.push_back(sim.run({in}).at(0));
  return out;
}

TEST(BiasCorrection, RecoversTheHandDerivedWeightRoundingShift) {
  // 1x1 conv, 2 -> 1 channels, W = {1.0, 0.3}, bias 0.5, input channels constant 0.5 and 1.0 with
  // s_x = 1/64 (codes 32 and 64, exact). Weights: s_w = 1/127, codes 127 and rint(38.1) = 38, so INT8
  // computes 0.3 as 38/127 and every output is low by (0.3 - 38 s_w) * 1.0 (the input's codes exact).
  GraphBuilder b;
  const std::string x = b.input("images", {1, 2, 4, 4});
  Attributes a;
  a.set("kernel_shape", std::vector<int64_t>{1, 1});
  a.set("strides", std::vector<int64_t>{1, 1});
  a.set("pads", std::vector<int64_t>{0, 0, 0, 0});
  a.set("dilations", std::vector<int64_t>{1, 1});
  a.set("group", int64_t{1});
  b.output(b.node("Conv",
                  {x, b.constant("w", HostTensor::from_f32({1, 2, 1, 1}, {1.0f, 0.3f})),
                   b.constant("bias", HostTensor::from_f32({1}, {0.5f}))},
                  a, "a"));
  Graph g = b.build();
  passes::optimize(g);
  HostTensor in(DType::F32, {1, 2, 4, 4});
  for (int64_t i = 0; i < 16; ++i) {
    in.data<float>()[i] = 0.5f;
    in.data<float>()[16 + i] = 1.0f;
  }
  const float s_x = 1.f / 64.f;
  Graph q = quantized(g, {{"images", s_x}});
  const float s_w = 1.0f / 127.f;  // max|W| / 127
  const double fp32_out = 0.5 + 0.3 * 1.0 + 0.5f;
  const double int8_pre = static_cast<double>(s_x * s_w) * (32 * 127 + 64 * 38) + 0.5f;
  const double shift = fp32_out - int8_pre;  // 0.3 - 38/127 = 7.87e-4
  ASSERT_GT(shift, 7e-4);
  EXPECT_NEAR(run_int8(q, {in})[0].data<float>()[0], int8_pre, 1e-6);

  const auto corr = quant::correct_biases(q, g, {in}, 1);
  ASSERT_EQ(corr.size(), 1u);
  ASSERT_EQ(corr.at("a").size(), 1u);
  EXPECT_NEAR(corr.at("a")[0], shift, 1e-7);
  // The corrected model reproduces FP32 to float rounding on every output.
  const HostTensor y = run_int8(q, {in})[0];
  for (int64_t i = 0; i < y.numel(); ++i) EXPECT_NEAR(y.data<float>()[i], fp32_out, 2e-7) << i;
}

TEST(BiasCorrection, MeanShiftOfAPaddedStridedConvMatchesTheBruteForceMean) {
  // 3x3 stride 2 pad 1, no activation: the output is the pre-activation value, so the correction must
  // equal the mean of FP32 minus INT8 output over images and positions, borders (padding) included.
  GraphBuilder b;
  const std::string x = b.input("images", {1, 3, 9, 9});
  b.output(b.conv(x, 3, 4, 3, 2, 1, true, "a"));
  Graph g = b.build();
  passes::optimize(g);
  const Graph q0 = quantized(g, {{"images", 1.f / 127.f}});
  std::vector<HostTensor> inputs;
  for (uint32_t s = 0; s < 3; ++s) inputs.push_back(random_input({1, 3, 9, 9}, 100 + s));
  const std::vector<double> brute = channel_mean_difference(run_fp32(g, inputs), run_int8(q0, inputs));
  Graph q = q0;
  const auto corr = quant::correct_biases(q, g, inputs, 1);
  ASSERT_EQ(corr.at("a").size(), 4u);
  double largest = 0;
  for (size_t m = 0; m < 4; ++m) {
    EXPECT_NEAR(corr.at("a")[m], brute[m], 2e-6) << "channel " << m;
    largest = std::max(largest, std::fabs(brute[m]));
  }
  EXPECT_GT(largest, 1e-4);  // a real shift, not a vacuous match of zeros
  for (double d : channel_mean_difference(run_fp32(g, inputs), run_int8(q, inputs))) EXPECT_NEAR(d, 0.0, 2e-6);
}

TEST(BiasCorrection, EachConvIsCorrectedForItsOwnErrorOnTheSimulatedInput) {
  // a (SiLU) -> b (SiLU, stride 2) -> c (no activation). The correction of c is the mean of what its own
  // quantization (input codes and weights) shifts, on the input the INT8 simulation gives it -- not the
  // upstream's error, which a's and b's own corrections address. Checked against c alone: FP32 c and
  // INT8 c run on the simulation's input to c.
  const Graph g = test::tiny_fused_graph(16);
  std::vector<HostTensor> inputs;
  for (uint32_t s = 0; s < 4; ++s) inputs.push_back(random_input({1, 3, 16, 16}, 200 + s));
  const std::vector<std::string> tensors = quant::quantizable_tensors(g);
  ASSERT_EQ(tensors.size(), 3u);
  std::map<std::string, float> scales;  // max|x| / 127 over the inputs (minmax)
  CpuExecutor exec(g);
  for (auto& in : inputs) {
    const std::vector<std::string> computed(tensors.begin() + 1, tensors.end());
    std::vector<HostTensor> kept;
    exec.run({in}, computed, &kept);
    kept.insert(kept.begin(), in);
    for (size_t k = 0; k < kept.size(); ++k)
      for (int64_t i = 0; i < kept[k].numel(); ++i)
        scales[tensors[k]] = std::max(scales[tensors[k]], std::fabs(kept[k].data<float>()[i]) / 127.f);
  }
  const Graph q0 = quantized(g, scales);
  // c alone, reading what the simulation feeds c.
  const Node& c = *test::node_named(g, "c");
  Graph alone;
  Value x = g.value(c.inputs[0]);
  alone.add_value(x);
  alone.inputs = {x.name};
  for (size_t i = 1; i < c.inputs.size(); ++i)
    if (!c.inputs[i].empty()) alone.add_value(g.value(c.inputs[i]));
  alone.add_value(g.value(c.outputs[0]));
  alone.nodes.push_back(c);
  alone.outputs = {c.outputs[0]};
  alone.infer_shapes();
  const Graph alone_q = quantized(alone, {{x.name, scales.at(x.name)}});
  std::vector<HostTensor> fed;
  const quant::Simulator sim(q0);
  for (auto& in : inputs) {
    std::vector<HostTensor> kept;
    sim.run({in}, {x.name}, &kept);
    fed.push_back(kept.at(0));
  }
  const std::vector<double> own = channel_mean_difference(run_fp32(alone, fed), run_int8(alone_q, fed));
  Graph q = q0;
  const auto corr = quant::correct_biases(q, g, inputs, 1);
  ASSERT_EQ(corr.size(), 3u);
  ASSERT_EQ(corr.at("c").size(), own.size());
  double largest = 0;
  for (size_t m = 0; m < own.size(); ++m) {
    EXPECT_NEAR(corr.at("c")[m], own[m], 2e-6) << "channel " << m;
    largest = std::max(largest, std::fabs(own[m]));
  }
  EXPECT_GT(largest, 1e-4);
}

TEST(BiasCorrection, ExportCarriesTheCorrectedBias) {
  const Graph imported = [] {
    GraphBuilder b;
    const std::string x = b.input("images", {1, 3, 9, 9});
    b.output(b.conv(x, 3, 4, 3, 2, 1, true, "a"));
    return b.build();
  }();
  quant::ModelForms forms = quant::plain_and_fused(imported);
  Graph q = quantized(forms.fused, {{"images", 1.f / 127.f}});
  const auto corr = quant::correct_biases(q, forms.fused, {random_input({1, 3, 9, 9}, 7)}, 1);
  quant::apply_to_plain_graph(forms.plain, q);
  const Node* conv = test::node_named(forms.plain, "a");
  ASSERT_NE(conv, nullptr);
  ASSERT_GE(conv->inputs.size(), 3u);
  const std::vector<float> plain_bias = forms.plain.value(conv->inputs[2]).constant->to_f32();
  const Node* fused = test::node_named(q, "a");
  EXPECT_EQ(plain_bias, q.value(fused->inputs[2]).constant->to_f32());
  const std::vector<float> original = imported.value("a.b").constant->to_f32();
  for (size_t m = 0; m < 4; ++m) EXPECT_FLOAT_EQ(plain_bias[m], original[m] + corr.at("a")[m]);
}

TEST(BiasCorrection, RefusesToMeasureOnNothing) {
  const Graph g = test::tiny_fused_graph(16);
  std::map<std::string, float> scales;
  for (auto& t : quant::quantizable_tensors(g)) scales[t] = 0.01f;
  Graph q = quantized(g, scales);
  EXPECT_NE(test::error_of([&] { quant::correct_biases(q, g, {}, 1); }).find("calibration images"), std::string::npos);
}

}  // namespace
