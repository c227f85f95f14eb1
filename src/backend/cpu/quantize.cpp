// QuantizeLinear / DequantizeLinear with the exact rounding the GPU kernels use: x / scale in float
// (IEEE division), round half to even, add the zero point, saturate to the integer range.
#include <cmath>

#include "backend/cpu/kernel.h"
#include "backend/cpu/kernels.h"
#include "ir/op_registry.h"

namespace kestrel::cpu {

namespace {
// Index of the scale/zero-point that applies to element i (per-tensor or per-axis).
struct ParamIndex {
  int64_t inner = 1, extent = 1;
  bool per_axis = false;
  int64_t operator()(int64_t i) const { return per_axis ? (i / inner) % extent : 0; }
};

ParamIndex param_index(const Node& n, const HostTensor& x, const HostTensor& scale) {
  ParamIndex p;
  if (scale.numel() <= 1) return p;
  const int64_t axis = normalize_axis(n.attrs.i("axis", 1), static_cast<int64_t>(x.rank()), n);
  KESTREL_CHECK(scale.numel() == x.dim(axis), n.op, " node '", n.name, "': ", scale.numel(),
                " scales for axis of extent ", x.dim(axis));
  p.per_axis = true;
  p.extent = x.dim(axis);
  for (size_t d = static_cast<size_t>(axis) + 1; d < x.rank(); ++d) p.inner *= x.dim(d);
  return p;
}
}  // namespace

float quantize_value(float x, float scale, int32_t zp, int32_t lo, int32_t hi) {
  const float q = std::nearbyint(x / scale) + static_cast<float>(zp);
  return std::fmin(std::fmax(q, static_cast<float>(lo)), static_cast<float>(hi));
}

void k_quantize(const Node& n, Inputs in, Outputs out) {
  const HostTensor& x = *in[0];
  const auto scale = in[1]->to_f32();
  const auto zp = (in.size() > 2 && in[2]) ? in[2]->to_i64() : std::vector<int64_t>(scale.size(), 0);
  const ParamIndex pi = param_index(n, x, *in[1]);
  const bool is_signed = out[0].dtype() == DType::I8;
  const int32_t lo = is_signed ? -128 : 0, hi = is_signed ? 127 : 255;
  const float* px = x.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t k = pi(i);
    const float q = quantize_value(px[i], scale[k], static_cast<int32_t>(zp[k]), lo, hi);
    if (is_signed) out[0].data<int8_t>()[i] = static_cast<int8_t>(q);
    else out[0].data<uint8_t>()[i] = static_cast<uint8_t>(q);
  }
}

void k_dequantize(const Node& n, Inputs in, Outputs out) {
  const HostTensor& x = *in[0];
  const auto scale = in[1]->to_f32();
  const auto zp = (in.size() > 2 && in[2]) ? in[2]->to_i64() : std::vector<int64_t>(scale.size(), 0);
  const ParamIndex pi = param_index(n, x, *in[1]);
  const auto q = x.to_i64();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t k = pi(i);
    out[0].data<float>()[i] = static_cast<float>(q[i] - zp[k]) * scale[k];
  }
}

}  // namespace kestrel::cpu
