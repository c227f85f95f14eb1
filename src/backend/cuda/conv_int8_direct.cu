// The reference INT8 convolution: one thread per output element, any group and channel count, any
// strides, on int8 codes. Exact int32 accumulation, then the contract's epilogue (include/kestrel/quant.h)
// with the accurate activation functions, so the tensor-core tactics are validated against the
// contract itself.
#include "backend/cuda/check.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/int8_kernels.h"

namespace kestrel::cuda {

namespace {

__global__ void conv_int8_direct_kernel(const __grid_constant__ ConvParams p, const int8_t* __restrict__ x,
                                        const int8_t* __restrict__ w, const float* __restrict__ scale,
                                        const float* __restrict__ bias, const __half* __restrict__ r,
                                        const int8_t* __restrict__ rq, float r_scale, float out_scale,
                                        void* __restrict__ y) {
  const long long total = (long long)p.N * p.K * p.OH * p.OW;
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= total) return;
  // Output channel fastest: neighbouring threads write neighbouring channels of a channels-last pixel.
  const int k = static_cast<int>(i % p.K);
  long long t = i / p.K;
  const int ox = static_cast<int>(t % p.OW);
  t /= p.OW;
  const int oy = static_cast<int>(t % p.OH);
  const int n = static_cast<int>(t / p.OH);
  const int cg = p.C / p.group, kg = p.K / p.group, g = k / kg;
  const int8_t* wk = w + (long long)k * p.KH * p.KW * cg;
  int acc = 0;
  for (int ky = 0; ky < p.KH; ++ky) {
    const int iy = oy * p.sh - p.ph + ky * p.dh;
    if (iy < 0 || iy >= p.H) continue;
    for (int kx = 0; kx < p.KW; ++kx) {
      const int ix = ox * p.sw - p.pw + kx * p.dw;
      if (ix < 0 || ix >= p.W) continue;
      const int8_t* xp = x + n * p.xs[0] + iy * p.xs[2] + ix * p.xs[3] + (long long)g * cg * p.xs[1];
      const int8_t* wp = wk + (ky * p.KW + kx) * cg;
      for (int c = 0; c < cg; ++c) acc += static_cast<int>(xp[c * p.xs[1]]) * static_cast<int>(wp[c]);
    }
  }
  float v = fmaf(__int2float_rn(acc), scale[k], bias ? bias[k] : 0.f);
  v = apply_act(p.act, v, p.alpha, p.beta);
  const long long ro = n * p.rs[0] + k * p.rs[1] + oy * p.rs[2] + ox * p.rs[3];
  if (r) v += __half2float(r[ro]);
  if (rq) v = __fmaf_rn(static_cast<float>(rq[ro]), r_scale, v);
  const __half h = __float2half_rn(v);
  const long long yo = n * p.ys[0] + k * p.ys[1] + oy * p.ys[2] + ox * p.ys[3];
  if (out_scale > 0.f)
    static_cast<int8_t*>(y)[yo] = int8_code_exact(__half2float(h), out_scale);
  else
    static_cast<__half*>(y)[yo] = h;
}

}  // namespace

void launch_conv_int8_direct(const ConvParams& p, const int8_t* x, const int8_t* w, const Int8Epilogue& e, void* y,
                             cudaStream_t stream) {
  const long long total = (long long)p.N * p.K * p.OH * p.OW;
  if (total == 0) return;
  constexpr int kThreads = 256;
  conv_int8_direct_kernel<<<blocks_for(total, kThreads), kThreads, 0, stream>>>(p, x, w, e.scale, e.bias, e.r, e.rq,
                                                                                e.r_scale, e.out_scale, y);
  KLAUNCH("conv_int8_direct");
}

}  // namespace kestrel::cuda
