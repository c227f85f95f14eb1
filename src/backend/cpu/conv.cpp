// Conv and ConvTranspose (2-D, grouped, dilated) as im2col + SGEMM (OpenBLAS); depthwise convs run a
// direct loop because a GEMM with one input channel per group wastes the im2col copy.
#include <cblas.h>

#include <cmath>
#include <cstring>

#include "backend/cpu/conv2d.h"
#include "backend/cpu/kernel.h"
#include "backend/cpu/kernels.h"
#include "ir/op_registry.h"

namespace kestrel::cpu {

Conv2d conv2d_geometry(const Node& node, const Shape& x, const Shape& wshape, const Shape& y) {
  KESTREL_CHECK(x.size() == 4, node.op, " node '", node.name, "': the CPU backend supports 2-D convolutions only");
  const auto kernel = node.attrs.ints("kernel_shape", Shape(wshape.begin() + 2, wshape.end()));
  PoolGeometry g = window_geometry(node, {x[2], x[3]}, kernel, false);
  return {x[0], x[1], x[2], x[3], wshape[0], y[2], y[3], kernel[0], kernel[1], g.strides[0], g.strides[1],
          g.dilations[0], g.dilations[1], g.pads[0], g.pads[1], node.attrs.i("group", 1)};
}

template <typename T>
void im2col(const T* x, const Conv2d& p, int64_t cg, float* col) {
  const int64_t rows = cg * p.kh * p.kw;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r / (p.kh * p.kw), ki = (r / p.kw) % p.kh, kj = r % p.kw;
    float* dst = col + r * p.oh * p.ow;
    const T* src = x + c * p.h * p.w;
    for (int64_t oy = 0; oy < p.oh; ++oy) {
      const int64_t iy = oy * p.sh - p.ph + ki * p.dh;
      float* d = dst + oy * p.ow;
      if (iy < 0 || iy >= p.h) {
        std::memset(d, 0, sizeof(float) * p.ow);
        continue;
      }
      for (int64_t ox = 0; ox < p.ow; ++ox) {
        const int64_t ix = ox * p.sw - p.pw + kj * p.dw;
        d[ox] = (ix >= 0 && ix < p.w) ? static_cast<float>(src[iy * p.w + ix]) : 0.f;
      }
    }
  }
}
template void im2col<float>(const float*, const Conv2d&, int64_t, float*);
template void im2col<int8_t>(const int8_t*, const Conv2d&, int64_t, float*);

namespace {
void depthwise(const float* x, const float* w, const float* b, float* y, const Conv2d& p) {
#pragma omp parallel for schedule(static)
  for (int64_t nc = 0; nc < p.n * p.c; ++nc) {
    const int64_t c = nc % p.c;
    const float* src = x + nc * p.h * p.w;
    const float* wk = w + c * p.kh * p.kw;
    float* dst = y + nc * p.oh * p.ow;
    for (int64_t oy = 0; oy < p.oh; ++oy)
      for (int64_t ox = 0; ox < p.ow; ++ox) {
        float acc = 0.f;
        for (int64_t ki = 0; ki < p.kh; ++ki) {
          const int64_t iy = oy * p.sh - p.ph + ki * p.dh;
          if (iy < 0 || iy >= p.h) continue;
          for (int64_t kj = 0; kj < p.kw; ++kj) {
            const int64_t ix = ox * p.sw - p.pw + kj * p.dw;
            if (ix >= 0 && ix < p.w) acc += src[iy * p.w + ix] * wk[ki * p.kw + kj];
          }
        }
        dst[oy * p.ow + ox] = acc + (b ? b[c] : 0.f);
      }
  }
}
}  // namespace

void k_conv(const Node& n, Inputs in, Outputs out) {
  const HostTensor& x = *in[0];
  const HostTensor& w = *in[1];
  const HostTensor* b = in.size() > 2 ? in[2] : nullptr;
  KESTREL_CHECK(x.dtype() == DType::F32 && w.dtype() == DType::F32, "Conv node '", n.name, "': float32 only");
  HostTensor& y = out[0];
  const Conv2d p = conv2d_geometry(n, x.shape(), w.shape(), y.shape());
  const float* bias = b ? b->data<float>() : nullptr;
  if (p.group == p.c && p.m == p.c) {
    depthwise(x.data<float>(), w.data<float>(), bias, y.data<float>(), p);
    return;
  }
  const int64_t cg = p.c / p.group, mg = p.m / p.group, k = cg * p.kh * p.kw, hw = p.oh * p.ow;
  const bool pointwise = p.kh == 1 && p.kw == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0 &&
                         p.oh == p.h && p.ow == p.w;
  std::vector<float> col(pointwise ? 0 : static_cast<size_t>(k * hw));
  for (int64_t img = 0; img < p.n; ++img)
    for (int64_t g = 0; g < p.group; ++g) {
      const float* xg = x.data<float>() + (img * p.c + g * cg) * p.h * p.w;
      float* yg = y.data<float>() + (img * p.m + g * mg) * hw;
      const float* bmat = xg;
      if (!pointwise) {
        im2col(xg, p, cg, col.data());
        bmat = col.data();
      }
      // Bias first, then accumulate the GEMM on top (beta = 1).
      for (int64_t m = 0; m < mg; ++m) {
        const float bv = bias ? bias[g * mg + m] : 0.f;
        std::fill(yg + m * hw, yg + (m + 1) * hw, bv);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(mg), static_cast<int>(hw),
                  static_cast<int>(k), 1.f, w.data<float>() + g * mg * k, static_cast<int>(k), bmat,
                  static_cast<int>(hw), 1.f, yg, static_cast<int>(hw));
    }
}

void k_conv_transpose(const Node& n, Inputs in, Outputs out) {
  const HostTensor& x = *in[0];
  const HostTensor& w = *in[1];
  const HostTensor* b = in.size() > 2 ? in[2] : nullptr;
  HostTensor& y = out[0];
  KESTREL_CHECK(x.rank() == 4, "ConvTranspose node '", n.name, "': 2-D only");
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t group = n.attrs.i("group", 1), cg = C / group, mg = w.dim(1), M = mg * group;
  const auto kernel = n.attrs.ints("kernel_shape", std::vector<int64_t>{w.dim(2), w.dim(3)});
  const auto s = n.attrs.ints("strides", std::vector<int64_t>{1, 1});
  const auto d = n.attrs.ints("dilations", std::vector<int64_t>{1, 1});
  const auto pads = n.attrs.ints("pads", std::vector<int64_t>{0, 0, 0, 0});
  const int64_t OH = y.dim(2), OW = y.dim(3), kh = kernel[0], kw = kernel[1];
  std::vector<float> col(static_cast<size_t>(mg * kh * kw * H * W));
  float* py = y.data<float>();
  for (int64_t img = 0; img < N; ++img)
    for (int64_t g = 0; g < group; ++g) {
      // col[(m,ki,kj), (iy,ix)] = sum_c W[c, m, ki, kj] * X[c, iy, ix]
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(mg * kh * kw), static_cast<int>(H * W),
                  static_cast<int>(cg), 1.f, w.data<float>() + g * cg * mg * kh * kw, static_cast<int>(mg * kh * kw),
                  x.data<float>() + (img * C + g * cg) * H * W, static_cast<int>(H * W), 0.f, col.data(),
                  static_cast<int>(H * W));
      for (int64_t m = 0; m < mg; ++m) {
        float* dst = py + (img * M + g * mg + m) * OH * OW;
        const float bv = b ? b->data<float>()[g * mg + m] : 0.f;
        std::fill(dst, dst + OH * OW, bv);
        for (int64_t ki = 0; ki < kh; ++ki)
          for (int64_t kj = 0; kj < kw; ++kj) {
            const float* src = col.data() + ((m * kh + ki) * kw + kj) * H * W;
            for (int64_t iy = 0; iy < H; ++iy) {
              const int64_t oy = iy * s[0] - pads[0] + ki * d[0];
              if (oy < 0 || oy >= OH) continue;
              for (int64_t ix = 0; ix < W; ++ix) {
                const int64_t ox = ix * s[1] - pads[1] + kj * d[1];
                if (ox >= 0 && ox < OW) dst[oy * OW + ox] += src[iy * W + ix];
              }
            }
          }
      }
    }
}

void k_batch_norm(const Node& n, Inputs in, Outputs out) {
  const HostTensor& x = *in[0];
  const auto scale = in[1]->to_f32(), bias = in[2]->to_f32(), mean = in[3]->to_f32(), var = in[4]->to_f32();
  const float eps = n.attrs.f("epsilon", 1e-5f);
  const int64_t N = x.dim(0), C = x.dim(1), inner = x.numel() / (N * C);
  const float* px = x.data<float>();
  float* py = out[0].data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const int64_t c = nc % C;
    const float a = scale[c] / std::sqrt(var[c] + eps);
    const float b = bias[c] - mean[c] * a;
    for (int64_t i = 0; i < inner; ++i) py[nc * inner + i] = px[nc * inner + i] * a + b;
  }
}

}  // namespace kestrel::cpu
