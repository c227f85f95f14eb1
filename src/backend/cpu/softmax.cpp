// Softmax over one axis (opset 13+), or over all trailing dims from `axis` for older opsets, where the
// importer marks the node with kestrel_legacy_axis = 1.
#include <cmath>

#include "backend/cpu/kernel.h"
#include "backend/cpu/kernels.h"
#include "ir/op_registry.h"

namespace kestrel::cpu {

void k_softmax(const Node& n, Inputs in, Outputs out) {
  const HostTensor& x = *in[0];
  const int64_t r = static_cast<int64_t>(x.rank());
  const bool legacy = n.attrs.i("kestrel_legacy_axis", 0);
  const int64_t axis = normalize_axis(n.attrs.i("axis", legacy ? 1 : -1), r, n);
  int64_t outer = 1, extent = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= x.dim(i);
  if (legacy) {
    for (int64_t i = axis; i < r; ++i) extent *= x.dim(i);
  } else {
    extent = x.dim(axis);
    for (int64_t i = axis + 1; i < r; ++i) inner *= x.dim(i);
  }
  const float* px = x.data<float>();
  float* py = out[0].data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t oi = 0; oi < outer * inner; ++oi) {
    const int64_t o = oi / inner, i = oi % inner;
    const float* src = px + o * extent * inner + i;
    float* dst = py + o * extent * inner + i;
    float mx = -INFINITY;
    for (int64_t k = 0; k < extent; ++k) mx = std::max(mx, src[k * inner]);
    float sum = 0.f;
    for (int64_t k = 0; k < extent; ++k) sum += (dst[k * inner] = std::exp(src[k * inner] - mx));
    for (int64_t k = 0; k < extent; ++k) dst[k * inner] /= sum;
  }
}

}  // namespace kestrel::cpu
