// MaxPool, AveragePool (2-D) and the global pools.
#include <algorithm>
#include <cfloat>

#include "backend/cpu/kernel.h"
#include "backend/cpu/kernels.h"
#include "ir/op_registry.h"

namespace kestrel::cpu {

namespace {
template <bool kMax>
void pool2d(const Node& n, const HostTensor& x, HostTensor& y) {
  KESTREL_CHECK(x.rank() == 4, n.op, " node '", n.name, "': 2-D pooling only");
  const int64_t NC = x.dim(0) * x.dim(1), H = x.dim(2), W = x.dim(3), OH = y.dim(2), OW = y.dim(3);
  PoolGeometry g = window_geometry(n, {H, W}, n.attrs.ints("kernel_shape"), n.attrs.i("ceil_mode", 0));
  const bool count_pad = n.attrs.i("count_include_pad", 0);
  const float* px = x.data<float>();
  float* py = y.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < NC; ++c)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) {
        float acc = kMax ? -FLT_MAX : 0.f;
        int64_t count = 0;
        for (int64_t ki = 0; ki < g.kernel[0]; ++ki) {
          const int64_t iy = oy * g.strides[0] - g.pads[0] + ki * g.dilations[0];
          for (int64_t kj = 0; kj < g.kernel[1]; ++kj) {
            const int64_t ix = ox * g.strides[1] - g.pads[1] + kj * g.dilations[1];
            const bool inside = iy >= 0 && iy < H && ix >= 0 && ix < W;
            if constexpr (kMax) {
              if (inside) acc = std::max(acc, px[(c * H + iy) * W + ix]);
            } else {
              // count_include_pad counts the explicit padding but never the ceil_mode overhang.
              const bool in_padded = iy < H + g.pads[2] && ix < W + g.pads[3];
              if (inside) acc += px[(c * H + iy) * W + ix];
              if (inside || (count_pad && in_padded)) ++count;
            }
          }
        }
        py[(c * OH + oy) * OW + ox] = kMax ? acc : (count ? acc / static_cast<float>(count) : 0.f);
      }
}
}  // namespace

void k_max_pool(const Node& n, Inputs in, Outputs out) { pool2d<true>(n, *in[0], out[0]); }
void k_average_pool(const Node& n, Inputs in, Outputs out) { pool2d<false>(n, *in[0], out[0]); }

void k_global_pool(const Node& n, Inputs in, Outputs out) {
  const HostTensor& x = *in[0];
  const int64_t NC = x.dim(0) * x.dim(1), inner = x.numel() / NC;
  const bool is_max = n.op == "GlobalMaxPool";
  for (int64_t c = 0; c < NC; ++c) {
    const float* p = x.data<float>() + c * inner;
    double acc = is_max ? -FLT_MAX : 0.0;
    for (int64_t i = 0; i < inner; ++i) acc = is_max ? std::max<double>(acc, p[i]) : acc + p[i];
    out[0].data<float>()[c] = static_cast<float>(is_max ? acc : acc / static_cast<double>(inner));
  }
}

}  // namespace kestrel::cpu
