// The integer convolution of the INT8 simulation. Exactness is the point: the GPU kernel accumulates
// int8 x int8 in int32, so the simulation must produce those very integers, whatever the summation
// order. SGEMM does it fast and exactly as long as no partial sum leaves the range where float holds
// every integer (|sum| <= 2^24): with |x_q|, |w_q| <= 128 a slice of 1024 products stays inside it,
// so K is cut into 1024-long slices and the slices are added in int32.
#include <cblas.h>

#include <cmath>
#include <cstring>

#include "ir/op_registry.h"
#include "kestrel/quant.h"
#include "quant/int8_conv.h"

namespace kestrel::quant::detail {

namespace {
constexpr int64_t kExactSlice = 1024;  // 1024 * 128 * 128 = 2^24
}

ConvGeometry conv_geometry(const Node& node, const Shape& x, const Shape& w, const Shape& y) {
  KESTREL_CHECK(x.size() == 4 && w.size() == 4 && y.size() == 4, node.op, " node '", node.name,
                "': INT8 convolutions are 2-D");
  const ConvGeometry p = cpu::conv2d_geometry(node, x, w, y);
  KESTREL_CHECK(p.group > 0 && p.c % p.group == 0 && p.m % p.group == 0 && w[1] == p.c / p.group, node.op, " node '",
                node.name, "': weights ", shape_str(w), " do not match the input ", shape_str(x));
  KESTREL_CHECK(p.k() < (int64_t{1} << 17), node.op, " node '", node.name, "': reduction too long for int32");
  return p;
}

namespace {
void depthwise(const int8_t* x, const float* w, const ConvGeometry& p, int32_t* acc) {
#pragma omp parallel for schedule(static)
  for (int64_t nc = 0; nc < p.n * p.c; ++nc) {
    const int64_t c = nc % p.c;
    const int8_t* src = x + nc * p.h * p.w;
    const float* wk = w + c * p.kh * p.kw;
    int32_t wi[64];
    const bool small = p.kh * p.kw <= 64;
    if (small)
      for (int64_t k = 0; k < p.kh * p.kw; ++k) wi[k] = static_cast<int32_t>(wk[k]);
    int32_t* dst = acc + nc * p.oh * p.ow;
    for (int64_t oy = 0; oy < p.oh; ++oy)
      for (int64_t ox = 0; ox < p.ow; ++ox) {
        int32_t s = 0;
        for (int64_t ki = 0; ki < p.kh; ++ki) {
          const int64_t iy = oy * p.sh - p.ph + ki * p.dh;
          if (iy < 0 || iy >= p.h) continue;
          for (int64_t kj = 0; kj < p.kw; ++kj) {
            const int64_t ix = ox * p.sw - p.pw + kj * p.dw;
            if (ix < 0 || ix >= p.w) continue;
            const int32_t wv = small ? wi[ki * p.kw + kj] : static_cast<int32_t>(wk[ki * p.kw + kj]);
            s += static_cast<int32_t>(src[iy * p.w + ix]) * wv;
          }
        }
        dst[oy * p.ow + ox] = s;
      }
  }
}

}  // namespace

void int8_conv_accumulate(const int8_t* x_q, const float* w, const ConvGeometry& p, int32_t* acc) {
  if (p.group == p.c && p.m == p.c) {
    depthwise(x_q, w, p, acc);
    return;
  }
  const int64_t cg = p.cg(), mg = p.mg(), K = p.k(), HW = p.hw();
  std::vector<float> col(static_cast<size_t>(K * HW));
  std::vector<float> part(static_cast<size_t>(mg * HW));
  for (int64_t img = 0; img < p.n; ++img)
    for (int64_t g = 0; g < p.group; ++g) {
      cpu::im2col(x_q + (img * p.c + g * cg) * p.h * p.w, p, cg, col.data());  // this group's channels
      int32_t* a = acc + (img * p.m + g * mg) * HW;
      std::memset(a, 0, sizeof(int32_t) * static_cast<size_t>(mg * HW));
      const float* wg = w + g * mg * K;
      for (int64_t k0 = 0; k0 < K; k0 += kExactSlice) {
        const int64_t kc = std::min(kExactSlice, K - k0);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(mg), static_cast<int>(HW),
                    static_cast<int>(kc), 1.f, wg + k0, static_cast<int>(K), col.data() + k0 * HW, static_cast<int>(HW),
                    0.f, part.data(), static_cast<int>(HW));
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < mg * HW; ++i) a[i] += static_cast<int32_t>(part[static_cast<size_t>(i)]);
      }
    }
}

Epilogue parse_epilogue(const Node& n) {
  const std::string a = n.attrs.s("activation", "none");
  Epilogue e;
  if (a == "none") e.act = Act::None;
  else if (a == "relu") e.act = Act::Relu;
  else if (a == "leaky_relu") e.act = Act::LeakyRelu;
  else if (a == "sigmoid") e.act = Act::Sigmoid;
  else if (a == "silu") e.act = Act::Silu;
  else if (a == "hard_swish") e.act = Act::HardSwish;
  else if (a == "hard_sigmoid") e.act = Act::HardSigmoid;
  else if (a == "tanh") e.act = Act::Tanh;
  else fail("kestrel.Conv node '", n.name, "': unknown activation '", a, "'");
  // ONNX's defaults for LeakyRelu (alpha) and HardSigmoid (alpha, beta), as the FP32 kernel uses.
  e.alpha = n.attrs.f("alpha", e.act == Act::HardSigmoid ? 0.2f : 0.01f);
  e.beta = n.attrs.f("beta", 0.5f);
  return e;
}

namespace {
// The activation expressions of the FP32 kestrel.Conv kernel (src/backend/cpu/fused_conv.cpp), so an
// FP32 and an INT8 layer differ only by the quantization.
template <Act A>
inline float activate(float v, float alpha, float beta) {
  if constexpr (A == Act::Relu) return v > 0.f ? v : 0.f;
  if constexpr (A == Act::LeakyRelu) return v >= 0.f ? v : v * alpha;
  if constexpr (A == Act::Sigmoid) return 1.f / (1.f + std::exp(-v));
  if constexpr (A == Act::Silu) return v * (1.f / (1.f + std::exp(-v)));
  if constexpr (A == Act::HardSwish) return v * std::fmax(0.f, std::fmin(1.f, v / 6.f + 0.5f));
  if constexpr (A == Act::HardSigmoid) return std::fmax(0.f, std::fmin(1.f, alpha * v + beta));
  if constexpr (A == Act::Tanh) return std::tanh(v);
  return v;
}

template <Act A>
void epilogue(const int32_t* acc, float s_x, const float* s_w, const float* bias, float alpha, float beta,
              const Residual& residual, const ConvGeometry& p, float* y) {
  const int64_t hw = p.hw();
#pragma omp parallel for schedule(static)
  for (int64_t plane = 0; plane < p.n * p.m; ++plane) {
    const int64_t m = plane % p.m;
    const float scale = s_x * s_w[m];  // rounded to float before the multiply-add, as the contract says
    const float b = bias ? bias[m] : 0.f;
    const int32_t* a = acc + plane * hw;
    float* out = y + plane * hw;
    const float* rf = residual.f ? residual.f + plane * hw : nullptr;
    const int8_t* rq = residual.q ? residual.q + plane * hw : nullptr;
    for (int64_t i = 0; i < hw; ++i) {
      const float v = activate<A>(std::fma(static_cast<float>(a[i]), scale, b), alpha, beta);
      out[i] = rq ? std::fma(static_cast<float>(rq[i]), residual.scale, v) : rf ? v + rf[i] : v;
    }
  }
}
}  // namespace

void int8_conv_epilogue(const int32_t* acc, float s_x, const float* s_w, const float* bias, const Epilogue& e,
                        const Residual& residual, const ConvGeometry& p, float* y) {
  switch (e.act) {
    case Act::None: return epilogue<Act::None>(acc, s_x, s_w, bias, e.alpha, e.beta, residual, p, y);
    case Act::Relu: return epilogue<Act::Relu>(acc, s_x, s_w, bias, e.alpha, e.beta, residual, p, y);
    case Act::LeakyRelu: return epilogue<Act::LeakyRelu>(acc, s_x, s_w, bias, e.alpha, e.beta, residual, p, y);
    case Act::Sigmoid: return epilogue<Act::Sigmoid>(acc, s_x, s_w, bias, e.alpha, e.beta, residual, p, y);
    case Act::Silu: return epilogue<Act::Silu>(acc, s_x, s_w, bias, e.alpha, e.beta, residual, p, y);
    case Act::HardSwish: return epilogue<Act::HardSwish>(acc, s_x, s_w, bias, e.alpha, e.beta, residual, p, y);
    case Act::HardSigmoid: return epilogue<Act::HardSigmoid>(acc, s_x, s_w, bias, e.alpha, e.beta, residual, p, y);
    case Act::Tanh: return epilogue<Act::Tanh>(acc, s_x, s_w, bias, e.alpha, e.beta, residual, p, y);
  }
}

}  // namespace kestrel::quant::detail

namespace kestrel::quant {

std::vector<int32_t> int8_conv_accumulate(const HostTensor& x_q, const HostTensor& w_q, const Node& conv,
                                          const Shape& y_shape) {
  KESTREL_CHECK(x_q.dtype() == DType::I8 && w_q.dtype() == DType::I8, "int8_conv_accumulate: int8 tensors expected");
  const detail::ConvGeometry p = detail::conv_geometry(conv, x_q.shape(), w_q.shape(), y_shape);
  KESTREL_CHECK(y_shape[0] == p.n && y_shape[1] == p.m, "int8_conv_accumulate: output shape ", shape_str(y_shape),
                " does not match");
  std::vector<float> w(static_cast<size_t>(w_q.numel()));
  for (int64_t i = 0; i < w_q.numel(); ++i) w[static_cast<size_t>(i)] = w_q.data<int8_t>()[i];
  std::vector<int32_t> acc(static_cast<size_t>(shape_numel(y_shape)));
  detail::int8_conv_accumulate(x_q.data<int8_t>(), w.data(), p, acc.data());
  return acc;
}

}  // namespace kestrel::quant
