// Shape, constants, Range and Cast.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/kernel.h"
#include "backend/cpu/kernels.h"

namespace kestrel::cpu {

void k_shape(const Node& n, Inputs in, Outputs out) {
  const int64_t r = static_cast<int64_t>(in[0]->rank());
  int64_t start = n.attrs.i("start", 0), end = n.attrs.i("end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  for (int64_t i = 0; i < out[0].numel(); ++i) out[0].data<int64_t>()[i] = in[0]->dim(static_cast<size_t>(start + i));
}

void k_constant(const Node& n, Inputs, Outputs out) {
  const HostTensor& v = n.attrs.tensor("value");
  if (v.nbytes()) std::memcpy(out[0].raw(), v.raw(), v.nbytes());
}

void k_constant_of_shape(const Node& n, Inputs, Outputs out) {
  HostTensor v = n.attrs.has("value") ? n.attrs.tensor("value") : HostTensor::scalar_f32(0.f);
  const size_t es = dtype_size(v.dtype());
  for (int64_t i = 0; i < out[0].numel(); ++i) std::memcpy(static_cast<std::byte*>(out[0].raw()) + i * es, v.raw(), es);
}

void k_range(const Node&, Inputs in, Outputs out) {
  if (out[0].dtype() == DType::F32) {
    const float start = in[0]->to_f32()[0], delta = in[2]->to_f32()[0];
    for (int64_t i = 0; i < out[0].numel(); ++i) out[0].data<float>()[i] = start + static_cast<float>(i) * delta;
    return;
  }
  const auto start = in[0]->to_i64()[0], delta = in[2]->to_i64()[0];
  HostTensor r = HostTensor(DType::I64, out[0].shape());
  for (int64_t i = 0; i < r.numel(); ++i) r.data<int64_t>()[i] = start + i * delta;
  HostTensor c = r.cast(out[0].dtype());
  std::memcpy(out[0].raw(), c.raw(), c.nbytes());
}

void k_cast(const Node&, Inputs in, Outputs out) {
  HostTensor c = in[0]->cast(out[0].dtype());
  if (c.nbytes()) std::memcpy(out[0].raw(), c.raw(), c.nbytes());
}

}  // namespace kestrel::cpu
