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

// The products of one input value pair (v0 for pixel ox0, v1 for ox0 + 1) with the K weights of one tap.
template <int K>
__device__ __forceinline__ void stem_fma(const float4* wt, float v0, float v1, float (&acc0)[K], float (&acc1)[K]) {
#pragma unroll
  for (int k4 = 0; k4 < K / 4; ++k4) {
    const float4 wv = wt[k4];
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

// YOLOv8 / YOLO11's stem: 3 channels, 3x3, stride 2, pad 1, on rows of unit stride whose width is a
// multiple of 4 (so OW = W / 2 is even), every row, channel and image starting on 16 bytes when x does.
// The FP32 kernels' unrolled path and the tensor-core stem (conv_stem_mma.cu) both need it.
__host__ __device__ __forceinline__ bool is_yolo_stem_rows(const ConvParams& p) {
  return p.C == 3 && p.KH == 3 && p.KW == 3 && p.sh == 2 && p.sw == 2 && p.ph == 1 && p.pw == 1 && p.dh == 1 &&
         p.dw == 1 && p.xs[3] == 1 && p.W % 4 == 0 && p.OW == p.W / 2 && p.xs[0] % 4 == 0 && p.xs[1] % 4 == 0 &&
         p.xs[2] % 4 == 0;
}

// Every thread has both pixels; their windows span input columns 2 ox0 - 1 .. 2 ox0 + 3: one aligned
// float4 and the value before it per row and channel.
__device__ __forceinline__ bool stem_is_3x3s2_rows(const ConvParams& p, const float* x) {
  return is_yolo_stem_rows(p) && reinterpret_cast<uintptr_t>(x) % 16 == 0;
}

// stem_accumulate for that shape. Its bounds known at compile time, all 18 loads are issued before the
// first product; the generic loop below, with run-time bounds, waits for each load in turn (which
// mattered most at batch 1, where each thread's chain of loads is the kernel's time). Same products in
// the same order as the generic loop (a row outside the image adds zeros), so the two give the same sums.
template <int K, typename Load>
__device__ __forceinline__ void stem_accumulate_3x3s2(const ConvParams& p, const float* __restrict__ x, const float4* sw4,
                                                      int n, int oy, int ox0, Load load, float (&acc0)[K],
                                                      float (&acc1)[K]) {
  float v[3][3][5];  // [ky][c][input column 2 ox0 - 1 + j]
#pragma unroll
  for (int ky = 0; ky < 3; ++ky) {
    const int iy = 2 * oy - 1 + ky;
    const bool row_in = iy >= 0 && iy < p.H;
#pragma unroll
    for (int c = 0; c < 3; ++c) {
      const float* xr = x + n * p.xs[0] + c * p.xs[1] + static_cast<long long>(iy) * p.xs[2] + 2 * ox0;
      float4 q = make_float4(0.f, 0.f, 0.f, 0.f);
      float left = 0.f;
      if (row_in) {
        q = __ldg(reinterpret_cast<const float4*>(xr));
        if (ox0 > 0) left = __ldg(xr - 1);
      }
      v[ky][c][0] = row_in && ox0 > 0 ? load(left) : 0.f;
      v[ky][c][1] = row_in ? load(q.x) : 0.f;
      v[ky][c][2] = row_in ? load(q.y) : 0.f;
      v[ky][c][3] = row_in ? load(q.z) : 0.f;
      v[ky][c][4] = row_in ? load(q.w) : 0.f;
    }
  }
#pragma unroll
  for (int ky = 0; ky < 3; ++ky)
#pragma unroll
    for (int kx = 0; kx < 3; ++kx)
#pragma unroll
      for (int c = 0; c < 3; ++c)
        stem_fma<K>(sw4 + ((ky * 3 + kx) * 3 + c) * (K / 4), v[ky][c][kx], v[ky][c][kx + 2], acc0, acc1);
}

// acc0 / acc1 (+)= the window sums of output pixels (n, oy, ox0) and (n, oy, ox0 + 1); `load(value)`
// maps an input value to what is multiplied (zero padding is 0 either way).
template <int K, typename Load>
__device__ __forceinline__ void stem_accumulate(const ConvParams& p, const float* __restrict__ x, const float4* sw4, int n,
                                                int oy, int ox0, bool two, Load load, float (&acc0)[K], float (&acc1)[K]) {
  if (stem_is_3x3s2_rows(p, x)) {
    stem_accumulate_3x3s2<K>(p, x, sw4, n, oy, ox0, load, acc0, acc1);
    return;
  }
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
        stem_fma<K>(wt + c * (K / 4), v0, v1, acc0, acc1);
      }
    }
  }
}

}  // namespace kestrel::cuda
