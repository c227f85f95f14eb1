// kestrel.Conv: Y = act(conv(X, W) + B) + R. The convolution itself is k_conv (im2col + OpenBLAS, or
// the depthwise loop), so a fused graph is numerically the unfused one: the epilogue then applies the
// activation with the very expressions of the unary kernels (elementwise_unary.cpp) and adds the
// residual, in the order the unfused graph does. Bit-exact agreement keeps the fusion tests sharp.
#include <cmath>

#include "backend/cpu/kernel.h"
#include "backend/cpu/kernels.h"

namespace kestrel::cpu {

namespace {
enum class Act { None, Relu, LeakyRelu, Sigmoid, Silu, HardSwish, HardSigmoid, Tanh };

Act parse_activation(const Node& n) {
  const std::string a = n.attrs.s("activation", "none");
  if (a == "none") return Act::None;
  if (a == "relu") return Act::Relu;
  if (a == "leaky_relu") return Act::LeakyRelu;
  if (a == "sigmoid") return Act::Sigmoid;
  if (a == "silu") return Act::Silu;
  if (a == "hard_swish") return Act::HardSwish;
  if (a == "hard_sigmoid") return Act::HardSigmoid;
  if (a == "tanh") return Act::Tanh;
  fail("kestrel.Conv node '", n.name, "': unknown activation '", a, "'");
}

template <Act A>
void epilogue(float* y, const float* r, int64_t planes, int64_t hw, float alpha, float beta) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    float* yp = y + p * hw;
    const float* rp = r ? r + p * hw : nullptr;
    for (int64_t i = 0; i < hw; ++i) {
      const float v = yp[i];
      float a = v;
      if constexpr (A == Act::Relu) a = v > 0.f ? v : 0.f;
      if constexpr (A == Act::LeakyRelu) a = v >= 0.f ? v : v * alpha;
      if constexpr (A == Act::Sigmoid) a = 1.f / (1.f + std::exp(-v));
      // SiLU as exported: Mul(x, Sigmoid(x)).
      if constexpr (A == Act::Silu) a = v * (1.f / (1.f + std::exp(-v)));
      if constexpr (A == Act::HardSwish) a = v * std::fmax(0.f, std::fmin(1.f, v / 6.f + 0.5f));
      if constexpr (A == Act::HardSigmoid) a = std::fmax(0.f, std::fmin(1.f, alpha * v + beta));
      if constexpr (A == Act::Tanh) a = std::tanh(v);
      yp[i] = rp ? a + rp[i] : a;
    }
  }
}
}  // namespace

void k_fused_conv(const Node& n, Inputs in, Outputs out) {
  // X, W, [B] go to the plain convolution; an absent B arrives as nullptr, which k_conv accepts.
  k_conv(n, in.subspan(0, std::min<size_t>(in.size(), 3)), out);
  HostTensor& y = out[0];
  const HostTensor* r = in.size() > 3 ? in[3] : nullptr;
  if (r)
    KESTREL_CHECK(r->shape() == y.shape() && r->dtype() == DType::F32, "kestrel.Conv node '", n.name,
                  "': residual ", shape_str(r->shape()), " does not match the output ", shape_str(y.shape()));
  const int64_t planes = y.dim(0) * y.dim(1), hw = y.numel() / std::max<int64_t>(planes, 1);
  const Act act = parse_activation(n);
  // Defaults are ONNX's for LeakyRelu (alpha) and HardSigmoid (alpha, beta).
  const float alpha = n.attrs.f("alpha", act == Act::HardSigmoid ? 0.2f : 0.01f);
  const float beta = n.attrs.f("beta", 0.5f);
  float* py = y.data<float>();
  const float* pr = r ? r->data<float>() : nullptr;
  if (act == Act::None && !pr) return;
  switch (act) {
    case Act::None: epilogue<Act::None>(py, pr, planes, hw, alpha, beta); break;
    case Act::Relu: epilogue<Act::Relu>(py, pr, planes, hw, alpha, beta); break;
    case Act::LeakyRelu: epilogue<Act::LeakyRelu>(py, pr, planes, hw, alpha, beta); break;
    case Act::Sigmoid: epilogue<Act::Sigmoid>(py, pr, planes, hw, alpha, beta); break;
    case Act::Silu: epilogue<Act::Silu>(py, pr, planes, hw, alpha, beta); break;
    case Act::HardSwish: epilogue<Act::HardSwish>(py, pr, planes, hw, alpha, beta); break;
    case Act::HardSigmoid: epilogue<Act::HardSigmoid>(py, pr, planes, hw, alpha, beta); break;
    case Act::Tanh: epilogue<Act::Tanh>(py, pr, planes, hw, alpha, beta); break;
  }
}

}  // namespace kestrel::cpu
