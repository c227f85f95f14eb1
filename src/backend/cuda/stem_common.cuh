#pragma once
// The body the first-convolution kernels share (conv_direct.cu's FP16 / FP32 stem, conv_stem_int8.cu's
// INT8 stem): two horizontally adjacent output pixels per thread, all K outputs of each in registers;
// the weights, transposed to [tap][k], in shared memory and read as float4 (every thread reads the same
// words: broadcast), each weight used for both pixels. The kernels differ only in how an input value
// is read (as it is, or quantized to its int8 code) and in their epilogues.
#include "backend/cuda/conv_kernels.h"

namespace kestrel::cuda {

// w (OHWI, float or int8 codes) -> shared memory as floats [tap][k].
template <typename TW>
__device__ __forceinline__ void stem_load_weights(const ConvParams& p, const TW* __restrict__ w, int K, float* sw) {
  const int taps = p.KH * p.KW * p.C;
  for (int i = threadIdx.x; i < taps * K; i += blockDim.x) {
    const int k = i / taps, tap = i % taps;
    sw[tap * K + k] = static_cast<float>(w[i]);  // OHWI: w[k][tap]
  }
}

// This thread's output pixel pair: (n, oy, ox0) and, when `two`, (n, oy, ox0 + 1); false past the end.
struct StemPixels {
  int n, oy, ox0;
  bool two;
};
__device__ __forceinline__ bool stem_pixels(const ConvParams& p, StemPixels& px) {
  const int owp = (p.OW + 1) / 2;  // pixel pairs per row
  const long long pair = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (pair >= (long long)p.N * p.OH * owp) return false;
  px.ox0 = static_cast<int>(pair % owp) * 2;
  const long long t = pair / owp;
  px.oy = static_cast<int>(t % p.OH);
  px.n = static_cast<int>(t / p.OH);
  px.two = px.ox0 + 1 < p.OW;
  return true;
}

// acc0 / acc1 (+)= the window sums of output pixels (n, oy, ox0) and (n, oy, ox0 + 1); `load(value)`
// maps an input value to what is multiplied (zero padding is 0 either way).
template <int K, typename Load>
__device__ __forceinline__ void stem_accumulate(const ConvParams& p, const float* __restrict__ x, const float4* sw4, int n,
                                                int oy, int ox0, bool two, Load load, float (&acc0)[K], float (&acc1)[K]) {
  for (int ky = 0; ky < p.KH; ++ky) {
    const int iy = oy * p.sh - p.ph + ky * p.dh;
    if (iy < 0 || iy >= p.H) continue;
    for (int kx = 0; kx < p.KW; ++kx) {
      const int ix0 = ox0 * p.sw - p.pw + kx * p.dw, ix1 = ix0 + p.sw;
      const bool in0 = ix0 >= 0 && ix0 < p.W, in1 = two && ix1 >= 0 && ix1 < p.W;
      const float* xr = x + n * p.xs[0] + iy * p.xs[2];
      const float4* wt = sw4 + ((ky * p.KW + kx) * p.C) * (K / 4);
      for (int c = 0; c < p.C; ++c) {
        const float v0 = in0 ? load(__ldg(xr + c * p.xs[1] + ix0 * p.xs[3])) : 0.f;
        const float v1 = in1 ? load(__ldg(xr + c * p.xs[1] + ix1 * p.xs[3])) : 0.f;
#pragma unroll
        for (int k4 = 0; k4 < K / 4; ++k4) {
          const float4 wv = wt[c * (K / 4) + k4];
          acc0[4 * k4] += v0 * wv.x;
          acc0[4 * k4 + 1] += v0 * wv.y;
          acc0[4 * k4 + 2] += v0 * wv.z;
          acc0[4 * k4 + 3] += v0 * wv.w;
          acc1[4 * k4] += v1 * wv.x;
          acc1[4 * k4 + 1] += v1 * wv.y;
          acc1[4 * k4 + 2] += v1 * wv.z;
          acc1[4 * k4 + 3] += v1 * wv.w;
        }
      }
    }
  }
}

}  // namespace kestrel::cuda
