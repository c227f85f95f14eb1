#pragma once
#include <cstdint>
#include <vector>

#include "backend/cpu/kernel.h"

namespace kestrel::cpu {

// Calls f(out_index, offsets...) over the output in row-major order with each input's offset,
// walking the last dimension in an inner loop so the common cases stay cheap.
template <size_t N, typename F>
void for_each_broadcast(const Shape& out, const std::array<std::vector<int64_t>, N>& strides, F&& f) {
  const int64_t total = shape_numel(out);
  if (total == 0) return;
  const size_t r = out.size();
  const int64_t inner = r ? out[r - 1] : 1;
  std::vector<int64_t> idx(r, 0);
  std::array<int64_t, N> base{};
  for (int64_t o = 0; o < total; o += inner) {
    std::array<int64_t, N> inner_stride{};
    for (size_t k = 0; k < N; ++k) {
      base[k] = 0;
      for (size_t d = 0; d + 1 < r; ++d) base[k] += idx[d] * strides[k][d];
      inner_stride[k] = r ? strides[k][r - 1] : 0;
    }
    for (int64_t j = 0; j < inner; ++j) {
      std::array<int64_t, N> off;
      for (size_t k = 0; k < N; ++k) off[k] = base[k] + j * inner_stride[k];
      f(o + j, off);
    }
    for (int64_t d = static_cast<int64_t>(r) - 2; d >= 0; --d) {
      if (++idx[d] < out[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace kestrel::cpu
