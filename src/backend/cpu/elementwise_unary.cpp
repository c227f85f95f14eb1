// Unary elementwise ops. Float math in float except where ONNX Runtime computes in a wider type.
#include <cmath>

#include "backend/cpu/kernel.h"
#include "backend/cpu/kernels.h"

namespace kestrel::cpu {

namespace {
template <typename F>
void map_f32(const HostTensor& x, HostTensor& y, F f) {
  const float* in = x.data<float>();
  float* out = y.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for if (n > (1 << 16)) schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = f(in[i]);
}

template <typename F>
void map_any(const HostTensor& x, HostTensor& y, F f) {
  switch (x.dtype()) {
    case DType::F32: map_f32(x, y, [&](float v) { return f(v); }); break;
    case DType::I64: {
      const int64_t* in = x.data<int64_t>();
      int64_t* out = y.data<int64_t>();
      for (int64_t i = 0; i < x.numel(); ++i) out[i] = static_cast<int64_t>(f(static_cast<double>(in[i])));
      break;
    }
    case DType::I32: {
      const int32_t* in = x.data<int32_t>();
      int32_t* out = y.data<int32_t>();
      for (int64_t i = 0; i < x.numel(); ++i) out[i] = static_cast<int32_t>(f(static_cast<double>(in[i])));
      break;
    }
    default: fail("unary op: unsupported dtype ", dtype_name(x.dtype()));
  }
}

void require_f32(const Node& n, const HostTensor& x) {
  KESTREL_CHECK(x.dtype() == DType::F32, n.op, " node '", n.name, "': CPU kernel supports float32 only, got ",
                dtype_name(x.dtype()));
}
}  // namespace

void k_relu(const Node& n, Inputs in, Outputs out) {
  require_f32(n, *in[0]);
  map_f32(*in[0], out[0], [](float v) { return v > 0.f ? v : 0.f; });
}
void k_leaky_relu(const Node& n, Inputs in, Outputs out) {
  require_f32(n, *in[0]);
  const float a = n.attrs.f("alpha", 0.01f);
  map_f32(*in[0], out[0], [a](float v) { return v >= 0.f ? v : v * a; });
}
void k_sigmoid(const Node& n, Inputs in, Outputs out) {
  require_f32(n, *in[0]);
  map_f32(*in[0], out[0], [](float v) { return 1.f / (1.f + std::exp(-v)); });
}
void k_hard_sigmoid(const Node& n, Inputs in, Outputs out) {
  require_f32(n, *in[0]);
  const float a = n.attrs.f("alpha", 0.2f), b = n.attrs.f("beta", 0.5f);
  map_f32(*in[0], out[0], [a, b](float v) { return std::fmax(0.f, std::fmin(1.f, a * v + b)); });
}
void k_hard_swish(const Node& n, Inputs in, Outputs out) {
  require_f32(n, *in[0]);
  map_f32(*in[0], out[0], [](float v) { return v * std::fmax(0.f, std::fmin(1.f, v / 6.f + 0.5f)); });
}
void k_tanh(const Node& n, Inputs in, Outputs out) {
  require_f32(n, *in[0]);
  map_f32(*in[0], out[0], [](float v) { return std::tanh(v); });
}
void k_erf(const Node& n, Inputs in, Outputs out) {
  require_f32(n, *in[0]);
  map_f32(*in[0], out[0], [](float v) { return std::erf(v); });
}
void k_exp(const Node& n, Inputs in, Outputs out) {
  require_f32(n, *in[0]);
  map_f32(*in[0], out[0], [](float v) { return std::exp(v); });
}
void k_log(const Node& n, Inputs in, Outputs out) {
  require_f32(n, *in[0]);
  map_f32(*in[0], out[0], [](float v) { return std::log(v); });
}
void k_sqrt(const Node& n, Inputs in, Outputs out) {
  require_f32(n, *in[0]);
  map_f32(*in[0], out[0], [](float v) { return std::sqrt(v); });
}
void k_reciprocal(const Node& n, Inputs in, Outputs out) {
  require_f32(n, *in[0]);
  map_f32(*in[0], out[0], [](float v) { return 1.f / v; });
}
void k_floor(const Node& n, Inputs in, Outputs out) {
  require_f32(n, *in[0]);
  map_f32(*in[0], out[0], [](float v) { return std::floor(v); });
}
void k_ceil(const Node& n, Inputs in, Outputs out) {
  require_f32(n, *in[0]);
  map_f32(*in[0], out[0], [](float v) { return std::ceil(v); });
}
void k_round(const Node& n, Inputs in, Outputs out) {
  require_f32(n, *in[0]);
  map_f32(*in[0], out[0], [](float v) { return std::nearbyint(v); });  // half to even, as ONNX
}
void k_neg(const Node&, Inputs in, Outputs out) { map_any(*in[0], out[0], [](double v) { return -v; }); }
void k_abs(const Node&, Inputs in, Outputs out) { map_any(*in[0], out[0], [](double v) { return std::fabs(v); }); }

void k_not(const Node&, Inputs in, Outputs out) {
  const uint8_t* x = in[0]->data<uint8_t>();
  uint8_t* y = out[0].data<uint8_t>();
  for (int64_t i = 0; i < in[0]->numel(); ++i) y[i] = !x[i];
}

void k_clip(const Node& n, Inputs in, Outputs out) {
  require_f32(n, *in[0]);
  float lo = n.attrs.f("min", -INFINITY), hi = n.attrs.f("max", INFINITY);
  if (in.size() > 1 && in[1]) lo = in[1]->to_f32().at(0);
  if (in.size() > 2 && in[2]) hi = in[2]->to_f32().at(0);
  map_f32(*in[0], out[0], [lo, hi](float v) { return std::fmin(std::fmax(v, lo), hi); });
}

}  // namespace kestrel::cpu
