// kestrel.SPPF: Concat([X, m(X), m(m(X)), m(m(m(X)))], axis 1) with m = MaxPool(k, stride 1, pad k/2).
// Each (image, channel) plane is independent, so the three pools run back to back on one plane while
// it is in cache; the padding never wins a max (ONNX MaxPool pads with -inf), so windows are clipped.
#include <algorithm>
#include <cstring>

#include "backend/cpu/kernel.h"
#include "backend/cpu/kernels.h"

namespace kestrel::cpu {

namespace {
void max_pool_same(const float* src, float* dst, int64_t H, int64_t W, int64_t r) {
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) {
      float m = src[y * W + x];
      for (int64_t iy = std::max<int64_t>(0, y - r); iy <= std::min(H - 1, y + r); ++iy)
        for (int64_t ix = std::max<int64_t>(0, x - r); ix <= std::min(W - 1, x + r); ++ix)
          m = std::max(m, src[iy * W + ix]);
      dst[y * W + x] = m;
    }
}
}  // namespace

void k_fused_sppf(const Node& n, Inputs in, Outputs out) {
  const HostTensor& x = *in[0];
  KESTREL_CHECK(x.dtype() == DType::F32 && x.rank() == 4, "kestrel.SPPF node '", n.name, "': float32 NCHW only");
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), hw = H * W;
  const int64_t r = n.attrs.i("kernel", 5) / 2;
  const float* px = x.data<float>();
  float* py = out[0].data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const int64_t img = nc / C, c = nc % C;
    // Output channel block k (0..3) of image img holds the k-th pooling of input channel c.
    float* slot[4];
    for (int k = 0; k < 4; ++k) slot[k] = py + ((img * 4 + k) * C + c) * hw;
    std::memcpy(slot[0], px + nc * hw, sizeof(float) * hw);
    for (int k = 1; k < 4; ++k) max_pool_same(slot[k - 1], slot[k], H, W, r);
  }
}

}  // namespace kestrel::cpu
