#pragma once
// Tensor metadata built by hand for the GPU layer tests (layers made without a builder).
#include "backend/cuda/layer.h"

namespace kestrel::test {

// Channels-last [N, C, H, W] with `ld` elements per pixel (ld > C: a channel slice of a wider buffer).
inline cuda::TensorMeta channels_last_meta(DType dt, const Shape& s, int64_t ld) {
  cuda::TensorMeta m;
  m.dtype = dt;
  m.shape = s;
  m.strides = {s[2] * s[3] * ld, 1, s[3] * ld, ld};
  m.channels_last = true;
  return m;
}

// Dense row-major.
inline cuda::TensorMeta dense_meta(DType dt, const Shape& s) {
  cuda::TensorMeta m;
  m.dtype = dt;
  m.shape = s;
  m.strides.assign(s.size(), 1);
  for (int64_t d = static_cast<int64_t>(s.size()) - 2; d >= 0; --d) m.strides[d] = m.strides[d + 1] * s[d + 1];
  return m;
}

}  // namespace kestrel::test
