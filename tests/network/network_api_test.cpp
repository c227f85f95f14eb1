// The network-definition API, one layer type at a time: build a tiny network, run it on the CPU backend
// and compare with a computation written out by hand in the test. Then naming, laziness and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "kestrel/cpu_backend.h"
#include "kestrel/network.h"

namespace {

using kestrel::ActivationType;
using kestrel::DType;
using kestrel::ElementWiseOperation;
using kestrel::Graph;
using kestrel::HostTensor;
using kestrel::ITensor;
using kestrel::NetworkDefinition;
using kestrel::Shape;

HostTensor iota(Shape s, float start = 0.f, float step = 1.f) {
  std::vector<float> v(static_cast<size_t>(kestrel::shape_numel(s)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = start + step * static_cast<float>(i);
  return HostTensor::from_f32(std::move(s), std::move(v));
}

// Marks `out`, takes the graph and runs it on `inputs` (in addInput order).
std::vector<HostTensor> run(NetworkDefinition& net, const std::vector<ITensor*>& outs, const std::vector<HostTensor>& inputs,
                            Graph* keep = nullptr) {
  for (ITensor* o : outs) net.markOutput(*o);
  Graph g = net.graph();
  auto y = kestrel::CpuExecutor(g).run(inputs);
  if (keep) *keep = std::move(g);
  return y;
}

void expect_near(const HostTensor& y, const std::vector<float>& want, float tol = 1e-5f) {
  ASSERT_EQ(static_cast<size_t>(y.numel()), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(y.data<float>()[i], want[i], tol) << "at " << i;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const kestrel::Error& e) {
    std::printf("  (expected) %s\n", e.what());
    return e.what();
  }
  ADD_FAILURE() << "no kestrel::Error thrown";
  return "";
}

// Direct NCHW convolution, the textbook loops.
std::vector<float> ref_conv(const HostTensor& x, const HostTensor& w, const std::vector<float>& b, int64_t stride, int64_t pad,
                            int64_t dil, int64_t groups) {
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), M = w.dim(0), K = w.dim(2);
  const int64_t OH = (H + 2 * pad - dil * (K - 1) - 1) / stride + 1, OW = (W + 2 * pad - dil * (K - 1) - 1) / stride + 1;
  const int64_t cg = C / groups, mg = M / groups;
  std::vector<float> y(static_cast<size_t>(N * M * OH * OW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          double acc = b.empty() ? 0.0 : b[static_cast<size_t>(m)];
          const int64_t g = m / mg;
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t ky = 0; ky < K; ++ky)
              for (int64_t kx = 0; kx < K; ++kx) {
                const int64_t iy = oy * stride - pad + ky * dil, ix = ox * stride - pad + kx * dil;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                acc += x.data<float>()[((n * C + g * cg + c) * H + iy) * W + ix] *
                       w.data<float>()[((m * cg + c) * K + ky) * K + kx];
              }
          y[static_cast<size_t>(((n * M + m) * OH + oy) * OW + ox)] = static_cast<float>(acc);
        }
  return y;
}

// ---------------------------------------------------------------------------------------------------
TEST(NetworkLayers, Convolution) {
  NetworkDefinition net;
  ITensor* x = net.addInput("x", DType::F32, {1, 2, 5, 5});
  HostTensor w = iota({3, 2, 3, 3}, -1.f, 0.037f);
  std::vector<float> b = {0.5f, -0.25f, 1.f};
  auto* conv = net.addConvolution(*x, 3, {3, 3}, w, HostTensor::from_f32({3}, b));
  conv->setStride({2, 2});
  conv->setPadding({1, 1});
  EXPECT_EQ(conv->getOutput(0)->getDimensions(), (Shape{1, 3, 3, 3}));
  HostTensor in = iota({1, 2, 5, 5}, 0.f, 0.1f);
  auto y = run(net, {conv->getOutput(0)}, {in});
  expect_near(y[0], ref_conv(in, w, b, 2, 1, 1, 1), 1e-4f);
}

TEST(NetworkLayers, GroupedDilatedConvolutionWithoutBias) {
  NetworkDefinition net;
  ITensor* x = net.addInput("x", DType::F32, {2, 4, 7, 7});
  HostTensor w = iota({4, 1, 3, 3}, 0.3f, -0.05f);  // depthwise
  auto* conv = net.addConvolution(*x, 4, {3, 3}, w);
  conv->setNbGroups(4);
  conv->setDilation({2, 2});
  conv->setPadding({2, 2});
  HostTensor in = iota({2, 4, 7, 7}, -3.f, 0.01f);
  Graph g;
  auto y = run(net, {conv->getOutput(0)}, {in}, &g);
  EXPECT_EQ(y[0].shape(), (Shape{2, 4, 7, 7}));
  expect_near(y[0], ref_conv(in, w, {}, 1, 2, 2, 4), 1e-4f);
  EXPECT_EQ(g.nodes.at(0).attrs.i("group"), 4);
  EXPECT_EQ(g.nodes.at(0).inputs.size(), 2u);  // no bias input
}

TEST(NetworkLayers, Activations) {
  const std::vector<float> xs = {-4.f, -1.5f, -0.2f, 0.f, 0.7f, 2.f, 5.f};
  auto sig = [](float v) { return 1.f / (1.f + std::exp(-v)); };
  struct Case {
    ActivationType t;
    std::optional<float> a, b;
    std::function<float(float)> f;
  };
  const std::vector<Case> cases = {
      {ActivationType::kRELU, {}, {}, [](float v) { return std::max(v, 0.f); }},
      {ActivationType::kSIGMOID, {}, {}, sig},
      {ActivationType::kSILU, {}, {}, [&](float v) { return v * sig(v); }},
      {ActivationType::kLEAKY_RELU, 0.1f, {}, [](float v) { return v < 0 ? 0.1f * v : v; }},
      {ActivationType::kLEAKY_RELU, {}, {}, [](float v) { return v < 0 ? 0.01f * v : v; }},
      {ActivationType::kHARD_SWISH, {}, {}, [](float v) { return v * std::clamp(v + 3.f, 0.f, 6.f) / 6.f; }},
      {ActivationType::kHARD_SIGMOID, {}, {}, [](float v) { return std::clamp(0.2f * v + 0.5f, 0.f, 1.f); }},
      {ActivationType::kHARD_SIGMOID, 1.f / 6.f, 0.5f, [](float v) { return std::clamp(v / 6.f + 0.5f, 0.f, 1.f); }},
      {ActivationType::kTANH, {}, {}, [](float v) { return std::tanh(v); }},
      {ActivationType::kCLIP, -1.f, 1.5f, [](float v) { return std::clamp(v, -1.f, 1.5f); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(static_cast<int>(c.t));
    NetworkDefinition net;
    ITensor* x = net.addInput("x", DType::F32, {1, static_cast<int64_t>(xs.size())});
    auto* act = net.addActivation(*x, c.t, c.a, c.b);
    std::vector<float> want;
    for (float v : xs) want.push_back(c.f(v));
    auto y = run(net, {act->getOutput(0)}, {HostTensor::from_f32({1, static_cast<int64_t>(xs.size())}, xs)});
    expect_near(y[0], want);
  }
}

TEST(NetworkLayers, SiluIsLoweredLikeAnUltralyticsExport) {
  NetworkDefinition net;
  ITensor* x = net.addInput("x", DType::F32, {1, 4});
  auto* act = net.addActivation(*x, ActivationType::kSILU);
  act->setName("/model.0/act");
  EXPECT_EQ(act->getOutput(0)->getName(), "/model.0/act/Mul_output_0");
  net.markOutput(*act->getOutput(0));
  const Graph g = net.graph();
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].op, "Sigmoid");
  EXPECT_EQ(g.nodes[0].name, "/model.0/act/Sigmoid");
  EXPECT_EQ(g.nodes[1].op, "Mul");
  EXPECT_EQ(g.nodes[1].name, "/model.0/act/Mul");
  EXPECT_EQ(g.nodes[1].inputs, (std::vector<std::string>{"x", "/model.0/act/Sigmoid_output_0"}));
  // Switching the type renames the auto-named output to follow the single node.
  act->setActivationType(ActivationType::kRELU);
  EXPECT_EQ(act->getOutput(0)->getName(), "/model.0/act_output_0");
  const Graph g2 = net.graph();
  ASSERT_EQ(g2.nodes.size(), 1u);
  EXPECT_EQ(g2.outputs, std::vector<std::string>{"/model.0/act_output_0"});
}

TEST(NetworkLayers, ElementwiseWithBroadcasting) {
  const std::vector<float> a = {1, -2, 3, 4, 0.5f, 6};
  const std::vector<float> b = {2, 0.5f, -1};
  struct Case {
    ElementWiseOperation op;
    std::function<float(float, float)> f;
  };
  const std::vector<Case> cases = {
      {ElementWiseOperation::kSUM, [](float p, float q) { return p + q; }},
      {ElementWiseOperation::kSUB, [](float p, float q) { return p - q; }},
      {ElementWiseOperation::kPROD, [](float p, float q) { return p * q; }},
      {ElementWiseOperation::kDIV, [](float p, float q) { return p / q; }},
      {ElementWiseOperation::kPOW, [](float p, float q) { return std::pow(p, q); }},
      {ElementWiseOperation::kMIN, [](float p, float q) { return std::min(p, q); }},
      {ElementWiseOperation::kMAX, [](float p, float q) { return std::max(p, q); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(static_cast<int>(c.op));
    NetworkDefinition net;
    ITensor* x = net.addInput("a", DType::F32, {2, 3});
    ITensor* y = net.addInput("b", DType::F32, {3});
    auto* e = net.addElementwise(*x, *y, c.op);
    EXPECT_EQ(e->getOutput(0)->getDimensions(), (Shape{2, 3}));
    std::vector<float> want;
    for (size_t i = 0; i < a.size(); ++i) want.push_back(c.f(a[i], b[i % 3]));
    auto out = run(net, {e->getOutput(0)}, {HostTensor::from_f32({2, 3}, a), HostTensor::from_f32({3}, b)});
    // pow of a negative base to a non-integer exponent is NaN on both sides
    for (size_t i = 0; i < want.size(); ++i) {
      if (std::isnan(want[i])) EXPECT_TRUE(std::isnan(out[0].data<float>()[i]));
      else EXPECT_NEAR(out[0].data<float>()[i], want[i], 1e-5f) << i;
    }
  }
}

TEST(NetworkLayers, ConcatSplitSlice) {
  NetworkDefinition net;
  ITensor* a = net.addInput("a", DType::F32, {1, 2, 2});
  ITensor* b = net.addInput("b", DType::F32, {1, 1, 2});
  auto* cat = net.addConcat({a, b}, 1);  // [1,3,2] = a0 a1 a2 a3 b0 b1
  EXPECT_EQ(cat->getOutput(0)->getDimensions(), (Shape{1, 3, 2}));
  auto* split = net.addSplit(*cat->getOutput(0), -2, {1, 2});
  ASSERT_EQ(split->getNbOutputs(), 2);
  EXPECT_EQ(split->getOutput(1)->getDimensions(), (Shape{1, 2, 2}));
  auto* sl = net.addSlice(*cat->getOutput(0), {-1, 1}, {-4, 2}, {1, 2}, {-2, 1});  // rows 2,0 ; column 1
  EXPECT_EQ(sl->getOutput(0)->getDimensions(), (Shape{1, 2, 1}));
  auto y = run(net, {cat->getOutput(0), split->getOutput(0), split->getOutput(1), sl->getOutput(0)},
               {HostTensor::from_f32({1, 2, 2}, {1, 2, 3, 4}), HostTensor::from_f32({1, 1, 2}, {5, 6})});
  expect_near(y[0], {1, 2, 3, 4, 5, 6});
  expect_near(y[1], {1, 2});
  expect_near(y[2], {3, 4, 5, 6});
  expect_near(y[3], {6, 2});
}

TEST(NetworkLayers, MaxAndAveragePooling) {
  // 4x4 input 0..15
  for (bool exclude : {true, false}) {
    NetworkDefinition net;
    ITensor* x = net.addInput("x", DType::F32, {1, 1, 4, 4});
    auto* mx = net.addPooling(*x, kestrel::PoolingType::kMAX, {2, 2});  // stride defaults to the window
    auto* avg = net.addPooling(*x, kestrel::PoolingType::kAVERAGE, {3, 3}, {2, 2}, {1, 1});
    avg->setAverageCountExcludesPadding(exclude);
    EXPECT_EQ(mx->getOutput(0)->getDimensions(), (Shape{1, 1, 2, 2}));
    EXPECT_EQ(avg->getOutput(0)->getDimensions(), (Shape{1, 1, 2, 2}));
    auto y = run(net, {mx->getOutput(0), avg->getOutput(0)}, {iota({1, 1, 4, 4})});
    expect_near(y[0], {5, 7, 13, 15});
    // 3x3 windows at rows/cols -1..1 and 1..3: the top-left one sees {0,1,4,5} and 5 padded cells, ...
    const float d = exclude ? 0.f : 1.f;
    auto avgw = [&](std::vector<float> v, int pads) {
      float s = 0;
      for (float f : v) s += f;
      return s / (static_cast<float>(v.size()) + d * static_cast<float>(pads));
    };
    expect_near(y[1], {avgw({0, 1, 4, 5}, 5), avgw({1, 2, 3, 5, 6, 7}, 3), avgw({4, 5, 8, 9, 12, 13}, 3),
                       avgw({5, 6, 7, 9, 10, 11, 13, 14, 15}, 0)});
  }
}

TEST(NetworkLayers, ResizeNearestAndLinear) {
  NetworkDefinition net;
  ITensor* x = net.addInput("x", DType::F32, {1, 1, 2, 2});
  auto* up = net.addResize(*x, {2.f, 2.f});  // spatial-only scales
  auto* lin = net.addResizeToSize(*x, {1, 4}, kestrel::ResizeMode::kLINEAR);
  EXPECT_EQ(up->getOutput(0)->getDimensions(), (Shape{1, 1, 4, 4}));
  EXPECT_EQ(lin->getOutput(0)->getDimensions(), (Shape{1, 1, 1, 4}));
  Graph g;
  auto y = run(net, {up->getOutput(0), lin->getOutput(0)}, {HostTensor::from_f32({1, 1, 2, 2}, {1, 2, 3, 4})}, &g);
  expect_near(y[0], {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  // half-pixel, height 2 -> 1: source row 0.5 -> mean of the rows (2, 3); width 2 -> 4: x = (o + 0.5) / 2 - 0.5
  // = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1)
  expect_near(y[1], {2.f, 2.25f, 2.75f, 3.f});
  // Canonical form, as the importer writes it: only X as input, sizes/scales as attributes.
  EXPECT_EQ(g.nodes[0].inputs.size(), 1u);
  EXPECT_EQ(g.nodes[0].attrs.ints("kestrel_sizes"), (std::vector<int64_t>{1, 1, 4, 4}));
  EXPECT_EQ(g.nodes[0].attrs.s("coordinate_transformation_mode"), "asymmetric");
  EXPECT_EQ(g.nodes[0].attrs.s("nearest_mode"), "floor");
}

TEST(NetworkLayers, Softmax) {
  NetworkDefinition net;
  ITensor* x = net.addInput("x", DType::F32, {2, 3});
  auto* s0 = net.addSoftmax(*x, 0);
  auto* s1 = net.addSoftmax(*x, -1);
  const std::vector<float> v = {1, 2, 3, -1, 0, 4};
  auto y = run(net, {s0->getOutput(0), s1->getOutput(0)}, {HostTensor::from_f32({2, 3}, v)});
  std::vector<float> w0(6), w1(6);
  for (int c = 0; c < 3; ++c) {
    const float z = std::exp(v[c]) + std::exp(v[3 + c]);
    w0[c] = std::exp(v[c]) / z;
    w0[3 + c] = std::exp(v[3 + c]) / z;
  }
  for (int r = 0; r < 2; ++r) {
    float z = 0;
    for (int c = 0; c < 3; ++c) z += std::exp(v[r * 3 + c]);
    for (int c = 0; c < 3; ++c) w1[r * 3 + c] = std::exp(v[r * 3 + c]) / z;
  }
  expect_near(y[0], w0);
  expect_near(y[1], w1);
}

TEST(NetworkLayers, MatMulWithTransposes) {
  NetworkDefinition net;
  ITensor* a = net.addInput("a", DType::F32, {2, 3, 2});  // batch 2 of 3x2; used transposed: 2x3
  ITensor* b = net.addInput("b", DType::F32, {4, 3});     // used transposed: 3x4, broadcast over the batch
  auto* mm = net.addMatMul(*a, true, *b, true);
  EXPECT_EQ(mm->getOutput(0)->getDimensions(), (Shape{2, 2, 4}));
  HostTensor A = iota({2, 3, 2}, -1.f, 0.5f), B = iota({4, 3}, 2.f, -0.25f);
  auto y = run(net, {mm->getOutput(0)}, {A, B});
  std::vector<float> want;
  for (int n = 0; n < 2; ++n)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 4; ++j) {
        float s = 0;
        for (int k = 0; k < 3; ++k) s += A.data<float>()[(n * 3 + k) * 2 + i] * B.data<float>()[j * 3 + k];
        want.push_back(s);
      }
  expect_near(y[0], want);
}

TEST(NetworkLayers, ShuffleReshapeTranspose) {
  NetworkDefinition net;
  ITensor* x = net.addInput("x", DType::F32, {2, 3, 4});
  auto* sh = net.addShuffle(*x);
  sh->setFirstTranspose({0, 2, 1});        // [2,4,3]
  sh->setReshapeDimensions({0, -1});       // [2,12]: 0 copies, -1 infers
  sh->setSecondTranspose({1, 0});          // [12,2]
  auto* r = net.addReshape(*x, {-1, 4});   // [6,4]
  auto* t = net.addTranspose(*x, {2, 0, 1});
  auto* id = net.addShuffle(*x);           // nothing set: identity
  EXPECT_EQ(sh->getOutput(0)->getDimensions(), (Shape{12, 2}));
  EXPECT_EQ(r->getOutput(0)->getDimensions(), (Shape{6, 4}));
  EXPECT_EQ(t->getOutput(0)->getDimensions(), (Shape{4, 2, 3}));
  HostTensor in = iota({2, 3, 4});
  Graph g;
  auto y = run(net, {sh->getOutput(0), r->getOutput(0), t->getOutput(0), id->getOutput(0)}, {in}, &g);
  // sh: out[j][n] = x[n][j % 3][j / 3]
  std::vector<float> want;
  for (int j = 0; j < 12; ++j)
    for (int n = 0; n < 2; ++n) want.push_back(static_cast<float>(n * 12 + (j % 3) * 4 + j / 3));
  expect_near(y[0], want);
  expect_near(y[1], in.to_f32());
  std::vector<float> wt;
  for (int k = 0; k < 4; ++k)
    for (int n = 0; n < 2; ++n)
      for (int c = 0; c < 3; ++c) wt.push_back(static_cast<float>(n * 12 + c * 4 + k));
  expect_near(y[2], wt);
  expect_near(y[3], in.to_f32());
  // The Reshape target is fully resolved, as in the importer's canonical form.
  int reshapes = 0;
  for (auto& n : g.nodes) {
    if (n.op != "Reshape" || n.name != sh->getName() + "/Reshape") continue;
    EXPECT_EQ(n.attrs.ints("shape"), (std::vector<int64_t>{2, 12}));
    ++reshapes;
  }
  EXPECT_EQ(reshapes, 1);
}

TEST(NetworkLayers, ConstantUnaryReduce) {
  NetworkDefinition net;
  ITensor* x = net.addInput("x", DType::F32, {2, 3});
  auto* c = net.addConstant({1, 3}, HostTensor::from_f32({3}, {1.f, 2.f, 4.f}));
  c->getOutput(0)->setName("scale");
  auto* prod = net.addElementwise(*x, *c->getOutput(0), ElementWiseOperation::kPROD);
  auto* ex = net.addUnary(*prod->getOutput(0), kestrel::UnaryOperation::kSQRT);
  auto* sum = net.addReduce(*prod->getOutput(0), kestrel::ReduceOperation::kSUM, {1}, false);
  auto* mx = net.addReduce(*prod->getOutput(0), kestrel::ReduceOperation::kMAX, {0}, true);
  auto* avg = net.addReduce(*prod->getOutput(0), kestrel::ReduceOperation::kAVG, {0, 1}, true);
  EXPECT_EQ(sum->getOutput(0)->getDimensions(), (Shape{2}));
  EXPECT_EQ(mx->getOutput(0)->getDimensions(), (Shape{1, 3}));
  Graph g;
  auto y = run(net, {ex->getOutput(0), sum->getOutput(0), mx->getOutput(0), avg->getOutput(0)},
               {HostTensor::from_f32({2, 3}, {1, 4, 9, 16, 25, 36})}, &g);
  // x * [1,2,4] = [1, 8, 36, 16, 50, 144]
  expect_near(y[0], {1.f, std::sqrt(8.f), 6.f, 4.f, std::sqrt(50.f), 12.f});
  expect_near(y[1], {45.f, 210.f});
  expect_near(y[2], {16.f, 50.f, 144.f});
  expect_near(y[3], {255.f / 6.f});
  ASSERT_TRUE(g.value("scale").is_constant());  // an initializer, not a node
  EXPECT_EQ(g.value("scale").shape, (Shape{1, 3}));
}

TEST(NetworkLayers, UnaryOperations) {
  const std::vector<float> v = {0.25f, 1.5f, 2.5f, 4.f};
  struct Case {
    kestrel::UnaryOperation op;
    std::function<float(float)> f;
  };
  const std::vector<Case> cases = {
      {kestrel::UnaryOperation::kEXP, [](float a) { return std::exp(a); }},
      {kestrel::UnaryOperation::kLOG, [](float a) { return std::log(a); }},
      {kestrel::UnaryOperation::kRECIP, [](float a) { return 1.f / a; }},
      {kestrel::UnaryOperation::kABS, [](float a) { return std::fabs(a); }},
      {kestrel::UnaryOperation::kNEG, [](float a) { return -a; }},
      {kestrel::UnaryOperation::kFLOOR, [](float a) { return std::floor(a); }},
      {kestrel::UnaryOperation::kCEIL, [](float a) { return std::ceil(a); }},
      {kestrel::UnaryOperation::kROUND, [](float a) { return std::nearbyint(a); }},  // half to even
      {kestrel::UnaryOperation::kERF, [](float a) { return std::erf(a); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(static_cast<int>(c.op));
    NetworkDefinition net;
    ITensor* x = net.addInput("x", DType::F32, {4});
    auto* u = net.addUnary(*x, c.op);
    std::vector<float> want;
    for (float a : v) want.push_back(c.f(a));
    expect_near(run(net, {u->getOutput(0)}, {HostTensor::from_f32({4}, v)})[0], want);
  }
}

// ---------------------------------------------------------------------------------------------------
TEST(NetworkDefinition, NamesFollowLayersUnlessSet) {
  NetworkDefinition net("named");
  ITensor* x = net.addInput("images", DType::F32, {1, 3, 8, 8});
  auto* conv = net.addConvolution(*x, 4, {1, 1}, iota({4, 3, 1, 1}), iota({4}));
  EXPECT_EQ(conv->getName(), "Convolution_0");
  EXPECT_EQ(conv->getOutput(0)->getName(), "Convolution_0_output_0");
  conv->setName("/model.0/conv/Conv");
  EXPECT_EQ(conv->getOutput(0)->getName(), "/model.0/conv/Conv_output_0");
  auto* act = net.addActivation(*conv->getOutput(0), ActivationType::kRELU);
  act->getOutput(0)->setName("features");
  act->setName("relu");  // a tensor the user named keeps its name
  EXPECT_EQ(act->getOutput(0)->getName(), "features");
  net.markOutput(*act->getOutput(0));
  EXPECT_TRUE(act->getOutput(0)->isNetworkOutput());
  EXPECT_TRUE(x->isNetworkInput());
  EXPECT_EQ(act->getInput(0), conv->getOutput(0));
  EXPECT_EQ(act->getOutput(0)->getProducer(), act);
  const Graph g = net.graph();
  EXPECT_EQ(g.name, "named");
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].name, "/model.0/conv/Conv");
  EXPECT_EQ(g.nodes[0].inputs, (std::vector<std::string>{"images", "/model.0/conv/Conv.weight", "/model.0/conv/Conv.bias"}));
  EXPECT_EQ(g.nodes[1].inputs, std::vector<std::string>{"/model.0/conv/Conv_output_0"});
  EXPECT_EQ(g.outputs, std::vector<std::string>{"features"});
  EXPECT_EQ(g.parameter_count(), 16);
  // Renaming an input renames the graph input and its consumers' references.
  x->setName("pixels");
  const Graph g2 = net.graph();
  EXPECT_EQ(g2.inputs, std::vector<std::string>{"pixels"});
  EXPECT_EQ(g2.nodes[0].inputs[0], "pixels");
  EXPECT_FALSE(g2.has_value("images"));
}

TEST(NetworkDefinition, SettersAreAppliedAtTheNextQuery) {
  NetworkDefinition net;
  ITensor* x = net.addInput("x", DType::F32, {1, 1, 8, 8});
  auto* conv = net.addConvolution(*x, 2, {3, 3}, iota({2, 1, 3, 3}));
  auto* pool = net.addPooling(*conv->getOutput(0), kestrel::PoolingType::kMAX, {2, 2});
  EXPECT_EQ(pool->getOutput(0)->getDimensions(), (Shape{1, 2, 3, 3}));
  conv->setPadding({1, 1});  // downstream shapes follow
  EXPECT_EQ(pool->getOutput(0)->getDimensions(), (Shape{1, 2, 4, 4}));
  conv->setStride({2, 2});
  pool->setStride({1, 1});
  EXPECT_EQ(pool->getOutput(0)->getDimensions(), (Shape{1, 2, 3, 3}));
  conv->setPadding({0, 0});  // conv: 8 -> 3
  pool->setStride({2, 2});
  EXPECT_EQ(pool->getOutput(0)->getDimensions(), (Shape{1, 2, 1, 1}));
  pool->setCeilMode(true);
  EXPECT_EQ(pool->getOutput(0)->getDimensions(), (Shape{1, 2, 2, 2}));
}

TEST(NetworkDefinition, MetadataInUltralyticsForm) {
  NetworkDefinition net;
  net.setClassNames({"person", "bicycle", "it's"});
  net.setStride(32);
  net.setImgsz(640, 480);
  net.setMetadata("task", "detect");
  EXPECT_EQ(net.getMetadata().at("names"), "{0: 'person', 1: 'bicycle', 2: \"it's\"}");
  EXPECT_EQ(net.getMetadata().at("stride"), "32");
  EXPECT_EQ(net.getMetadata().at("imgsz"), "[640, 480]");
  ITensor* x = net.addInput("x", DType::F32, {1, 2});
  net.markOutput(*net.addActivation(*x, ActivationType::kRELU)->getOutput(0));
  const Graph g = net.takeGraph();
  EXPECT_EQ(g.metadata.at("task"), "detect");
  EXPECT_EQ(net.getNbLayers(), 0);  // taken
}

// ---------------------------------------------------------------------------------------------------
TEST(NetworkErrors, MismatchedConvolutionChannelsNameTheLayer) {
  NetworkDefinition net;
  ITensor* x = net.addInput("x", DType::F32, {1, 3, 8, 8});
  auto* ok = net.addConvolution(*x, 4, {3, 3}, iota({4, 3, 3, 3}));
  ok->setName("stem");
  const std::string msg = error_of([&] { net.addConvolution(*ok->getOutput(0), 8, {3, 3}, iota({8, 3, 3, 3})); });
  EXPECT_NE(msg.find("Convolution layer 'Convolution_1'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("4 channels"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[8,3,3,3]"), std::string::npos) << msg;
  // The failed layer was rolled back; the network is still usable.
  EXPECT_EQ(net.getNbLayers(), 1);
  auto* next = net.addConvolution(*ok->getOutput(0), 8, {1, 1}, iota({8, 4, 1, 1}));
  EXPECT_EQ(next->getOutput(0)->getDimensions(), (Shape{1, 8, 6, 6}));

  // Weights that only fit as a grouped convolution: accepted for shape queries (TensorRT's
  // add-then-setNbGroups order), but graph() insists on an explicit group count.
  auto* grouped = net.addConvolution(*next->getOutput(0), 8, {3, 3}, iota({8, 4, 3, 3}));
  grouped->setName("maybe_grouped");
  net.markOutput(*grouped->getOutput(0));
  const std::string g = error_of([&] { net.graph(); });
  EXPECT_NE(g.find("'maybe_grouped'"), std::string::npos) << g;
  EXPECT_NE(g.find("setNbGroups(2)"), std::string::npos) << g;
  grouped->setNbGroups(2);
  EXPECT_NO_THROW(net.graph());
}

TEST(NetworkErrors, BadShapesAndArgumentsNameTheLayer) {
  NetworkDefinition net;
  ITensor* a = net.addInput("a", DType::F32, {1, 3, 4, 4});
  ITensor* b = net.addInput("b", DType::F32, {1, 2, 5, 5});
  auto has = [](const std::string& msg, const std::string& what) {
    EXPECT_NE(msg.find(what), std::string::npos) << "'" << what << "' not in: " << msg;
  };
  has(error_of([&] { net.addElementwise(*a, *b, ElementWiseOperation::kSUM); }), "ElementWise layer 'ElementWise_");
  has(error_of([&] { net.addConcat({a, b}, 1); }), "Concatenation layer");
  has(error_of([&] { net.addConcat({a, b}, 5); }), "out of range");
  has(error_of([&] { net.addSplit(*a, 1, {1, 1}); }), "Split layer");
  has(error_of([&] { net.addSoftmax(*a, 4); }), "SoftMax layer");
  has(error_of([&] { net.addReshape(*a, {5, -1}); }), "cannot reshape");
  has(error_of([&] { net.addMatMul(*a, false, *b, false); }), "MatrixMultiply layer");
  has(error_of([&] { net.addConvolution(*a, 4, {3, 3}, iota({4, 3, 3, 3}), iota({3})); }), "bias has 3 values");
  has(error_of([&] { net.addPooling(*a, kestrel::PoolingType::kMAX, {7, 7}, {1, 1}); }), "Pooling layer");
  has(error_of([&] { net.addResize(*a, {2.f}); }), "Resize layer");
  has(error_of([&] { net.addConstant({2, 2}, HostTensor::from_f32({3}, {1, 2, 3})); }), "addConstant");
  EXPECT_EQ(net.getNbLayers(), 0);  // every failed add was rolled back

  // A setter that breaks a layer is reported, naming it, at the next query (and by the next add).
  auto* conv = net.addConvolution(*a, 2, {3, 3}, iota({2, 3, 3, 3}));
  conv->setName("late");
  conv->setStride({1, 1, 1});
  has(error_of([&] { conv->getOutput(0)->getDimensions(); }), "Convolution layer 'late'");
  has(error_of([&] { net.addActivation(*a, ActivationType::kRELU); }), "'late'");
  conv->setStride({1, 1});
  EXPECT_EQ(conv->getOutput(0)->getDimensions(), (Shape{1, 2, 2, 2}));

  // Names must be unique; tensors of another network are refused; a graph needs an output.
  has(error_of([&] { net.addInput("a", DType::F32, {1}); }), "already used");
  has(error_of([&] { conv->getOutput(0)->setName("b"); }), "already used");
  NetworkDefinition other;
  ITensor* foreign = other.addInput("f", DType::F32, {1, 3, 4, 4});
  has(error_of([&] { net.addElementwise(*a, *foreign, ElementWiseOperation::kSUM); }), "another network");
  has(error_of([&] { net.graph(); }), "no output");
}

}  // namespace
