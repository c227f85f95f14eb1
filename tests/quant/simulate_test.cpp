// The INT8 simulation: exact int32 accumulation, the documented epilogue, FP16 layers.
#include <gtest/gtest.h>

#include <random>

#include "kestrel/cpu_backend.h"
#include "quant_test_util.h"

namespace {
using namespace kestrel;

HostTensor random_int8(const Shape& s, uint32_t seed, int lo = -128, int hi = 127) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u(lo, hi);
  HostTensor t(DType::I8, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int8_t>()[i] = static_cast<int8_t>(u(rng));
  return t;
}

Node conv_node(int64_t k, int64_t stride, int64_t pad, int64_t dilation, int64_t group) {
  Node n;
  n.name = "conv";
  n.op = "kestrel.Conv";
  n.attrs.set("kernel_shape", std::vector<int64_t>{k, k});
  n.attrs.set("strides", std::vector<int64_t>{stride, stride});
  n.attrs.set("pads", std::vector<int64_t>{pad, pad, pad, pad});
  n.attrs.set("dilations", std::vector<int64_t>{dilation, dilation});
  n.attrs.set("group", group);
  return n;
}

// The textbook loop, in int32.
std::vector<int32_t> direct(const HostTensor& x, const HostTensor& w, const Node& n, const Shape& y) {
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), M = w.dim(0), K = w.dim(2);
  const int64_t s = n.attrs.ints("strides")[0], p = n.attrs.ints("pads")[0], d = n.attrs.ints("dilations")[0];
  const int64_t G = n.attrs.i("group"), cg = C / G, mg = M / G, OH = y[2], OW = y[3];
  std::vector<int32_t> out(static_cast<size_t>(N * M * OH * OW));
  for (int64_t b = 0; b < N; ++b)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          int32_t acc = 0;
          const int64_t g = m / mg;
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t ky = 0; ky < K; ++ky)
              for (int64_t kx = 0; kx < K; ++kx) {
                const int64_t iy = oy * s - p + ky * d, ix = ox * s - p + kx * d;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                acc += int32_t{x.data<int8_t>()[((b * C + g * cg + c) * H + iy) * W + ix]} *
                       int32_t{w.data<int8_t>()[((m * cg + c) * K + ky) * K + kx]};
              }
          out[static_cast<size_t>(((b * M + m) * OH + oy) * OW + ox)] = acc;
        }
  return out;
}

struct ConvCase {
  const char* name;
  Shape x;
  int64_t m, k, stride, pad, dilation, group;
};

TEST(Int8Conv, AccumulationEqualsDirectIntegerConvolution) {
  const ConvCase cases[] = {
      {"3x3", {2, 6, 9, 7}, 8, 3, 1, 1, 1, 1},
      {"strided grouped", {1, 6, 11, 10}, 4, 3, 2, 1, 1, 2},
      {"dilated", {1, 4, 12, 12}, 5, 3, 1, 2, 2, 1},
      {"pointwise", {1, 16, 6, 6}, 7, 1, 1, 0, 1, 1},
      {"depthwise", {1, 8, 9, 9}, 8, 3, 2, 1, 1, 8},
      // K = 130 * 9 = 1170 > 1024: the reduction is cut into exact slices.
      {"long reduction", {1, 130, 5, 5}, 3, 3, 1, 1, 1, 1},
  };
  uint32_t seed = 1;
  for (const ConvCase& c : cases) {
    const Node n = conv_node(c.k, c.stride, c.pad, c.dilation, c.group);
    const HostTensor x = random_int8(c.x, seed++);
    const HostTensor w = random_int8({c.m, c.x[1] / c.group, c.k, c.k}, seed++, -127, 127);
    const int64_t ek = (c.k - 1) * c.dilation + 1;
    const Shape y = {c.x[0], c.m, (c.x[2] + 2 * c.pad - ek) / c.stride + 1, (c.x[3] + 2 * c.pad - ek) / c.stride + 1};
    EXPECT_EQ(quant::int8_conv_accumulate(x, w, n, y), direct(x, w, n, y)) << c.name;
  }
}

TEST(Int8Conv, ExtremeCodesStayExact) {
  // Every product at its largest (-128 * -128): partial sums reach 2^24 within a slice.
  const Node n = conv_node(3, 1, 1, 1, 1);
  HostTensor x(DType::I8, {1, 256, 4, 4}), w(DType::I8, {2, 256, 3, 3});
  std::fill(x.data<int8_t>(), x.data<int8_t>() + x.numel(), int8_t{-128});
  std::fill(w.data<int8_t>(), w.data<int8_t>() + w.numel(), int8_t{-128});
  const Shape y = {1, 2, 4, 4};
  const auto acc = quant::int8_conv_accumulate(x, w, n, y);
  EXPECT_EQ(acc, direct(x, w, n, y));
  EXPECT_EQ(acc[5], 256 * 9 * 16384);  // an interior pixel sees the whole window
}

// x [1,3,6,6] -> conv "a" (3 -> 4, 3x3, SiLU) -> y, quantized with scale s.
Graph quantized_silu_conv(float s, quant::LayerPrecision float_precision, const std::string& rules = "") {
  test::GraphBuilder b;
  b.output(b.silu(b.conv(b.input("x", {1, 3, 6, 6}), 3, 4, 3, 1, 1, true, "a")));
  Graph g = b.build();
  passes::optimize(g);
  quant::QuantOptions o;
  o.activation_scales = {{"x", s}};
  o.float_precision = float_precision;
  if (!rules.empty()) o.rules = quant::parse_layer_rules(rules);
  quant::quantize_graph(g, o);
  return g;
}

TEST(Simulate, Int8ConvFollowsTheDocumentedArithmetic) {
  const float s = 0.021f;
  for (auto fp : {quant::LayerPrecision::FP32, quant::LayerPrecision::FP16}) {
    const Graph g = quantized_silu_conv(s, fp);
    const Node& conv = *test::find_node(g, "kestrel.Conv");
    const auto prod = g.producers();
    const Node& wdq = g.nodes[prod.at(conv.inputs[1])];
    const HostTensor& wq = *g.value(wdq.inputs[0]).constant;
    const auto sw = g.value(wdq.inputs[1]).constant->to_f32();
    const auto bias = g.value(conv.inputs[2]).constant->to_f32();
    const HostTensor x = test::random_tensor({1, 3, 6, 6}, 4, -3.f, 3.f);

    HostTensor xq(DType::I8, x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) xq.data<int8_t>()[i] = test::quantize_ref(x.data<float>()[i], s);
    const auto acc = direct(xq, wq, conv, {1, 4, 6, 6});
    const HostTensor y = quant::simulate(g, {x})[0];
    for (int64_t i = 0; i < y.numel(); ++i) {
      const int64_t m = i / 36;
      const float v = std::fma(static_cast<float>(acc[static_cast<size_t>(i)]), s * sw[m], bias[m]);
      float expected = v * (1.f / (1.f + std::exp(-v)));
      if (fp == quant::LayerPrecision::FP16) expected = f16_to_f32(f32_to_f16(expected));
      ASSERT_EQ(y.data<float>()[i], expected) << "element " << i << ", " << quant::precision_name(fp);
    }
  }
}

TEST(Simulate, Fp16LayerRoundsInputsWeightsAndOutputs) {
  const Graph g = quantized_silu_conv(0.02f, quant::LayerPrecision::FP16, "a:fp16");
  ASSERT_EQ(test::count_op(g, "QuantizeLinear"), 0);
  const HostTensor x = test::random_tensor({1, 3, 6, 6}, 9, -3.f, 3.f);
  // By hand: the FP32 kernel on half-rounded x, W and B, then a half-rounded output.
  Graph rounded = g;
  for (auto& n : rounded.nodes)
    for (auto& in : n.inputs)
      if (rounded.value(in).is_constant()) {
        HostTensor t = rounded.value(in).constant->clone();
        for (float& v : t.span<float>()) v = f16_to_f32(f32_to_f16(v));
        rounded.value(in).constant = t;
      }
  HostTensor xh = x.clone();
  for (float& v : xh.span<float>()) v = f16_to_f32(f32_to_f16(v));
  HostTensor expected = CpuExecutor(rounded).run({xh})[0];
  for (float& v : expected.span<float>()) v = f16_to_f32(f32_to_f16(v));
  const HostTensor y = quant::simulate(g, {x})[0];
  EXPECT_EQ(0, std::memcmp(y.raw(), expected.raw(), y.nbytes()));
}

TEST(Simulate, Fp32LayersRunUnchanged) {
  const Graph g = quantized_silu_conv(0.02f, quant::LayerPrecision::FP32, "a:fp32");
  const HostTensor x = test::random_tensor({1, 3, 6, 6}, 10, -3.f, 3.f);
  const HostTensor y = quant::simulate(g, {x})[0], ref = CpuExecutor(g).run({x})[0];
  EXPECT_EQ(0, std::memcmp(y.raw(), ref.raw(), y.nbytes()));
}

TEST(Simulate, EngineDescribesItself) {
  const Graph g = quantized_silu_conv(0.02f, quant::LayerPrecision::FP16);
  auto engine = quant::make_simulated_engine(g);
  EXPECT_EQ(engine->description(), "cpu int8 simulation (1 of 1 convs int8)");
  EXPECT_EQ(engine->input_shape(), (Shape{1, 3, 6, 6}));
  EXPECT_EQ(engine->output_shape(), (Shape{1, 4, 6, 6}));
}

TEST(OutputError, DetectionOutputsWeighBoxesAndScoresAlike) {
  // [1, 4 + 2, 8]: boxes in pixels, scores in [0, 1].
  HostTensor ref(DType::F32, {1, 6, 8}), y(DType::F32, {1, 6, 8});
  for (int64_t i = 0; i < 48; ++i) ref.data<float>()[i] = i < 32 ? 300.f : 0.5f;
  for (int64_t i = 0; i < 48; ++i) y.data<float>()[i] = ref.data<float>()[i] * (i < 32 ? 1.01f : 1.1f);
  EXPECT_NEAR(quant::output_error(y, ref), 0.5 * (0.01 + 0.1), 1e-6);
  HostTensor flat = ref.reshaped({48});
  EXPECT_GT(quant::output_error(y.reshaped({48}), flat), 0.0);
}

}  // namespace

namespace {
TEST(Simulate, ReusingAnFp32ReferenceRunChangesNothing) {
  // tiny graph, only conv b in INT8, everything else FP32: with the FP32 run's values as a reference,
  // conv a comes from it and b, c are recomputed -- the output must be bit-identical.
  Graph g = test::tiny_fused_graph();
  const Graph fp32 = g;
  quant::QuantOptions o;
  for (auto& t : quant::quantizable_tensors(g)) o.activation_scales[t] = 0.05f;
  o.rules = quant::parse_layer_rules("*:fp32,b:int8");
  o.float_precision = quant::LayerPrecision::FP32;
  quant::quantize_graph(g, o);
  const HostTensor x = test::random_tensor({1, 3, 16, 16}, 12, 0.f, 1.f);
  std::vector<std::string> all;
  for (auto& n : fp32.nodes) all.push_back(n.outputs[0]);
  std::vector<HostTensor> kept;
  CpuExecutor(fp32).run({x}, all, &kept);
  std::unordered_map<std::string, HostTensor> reference;
  for (size_t i = 0; i < all.size(); ++i) reference[all[i]] = kept[i];
  const quant::Simulator sim(g);
  const HostTensor a = sim.run({x})[0], b = sim.run({x}, reference)[0];
  EXPECT_EQ(0, std::memcmp(a.raw(), b.raw(), a.nbytes()));
  EXPECT_GT(test::rel_l2(a, kept.back()), 0.0);  // b's quantization did reach the output
}
}  // namespace
