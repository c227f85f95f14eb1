// INT8 convolutions the tensor-core tactics cannot run: depthwise layers (YOLO11's head and attention)
// and layers with few input channels per group (C % 16 != 0, e.g. C3k2's 8-channel bottleneck). One
// thread computes four consecutive output channels of one output pixel on channels-last int8 codes:
//   depthwise   four channels of each tap in one 4-byte load, four int32 accumulators
//   dense       per tap, four input channels at a time (one 4-byte load) into __dp4a per output channel
// Integer sums are exact, so the accumulators equal the reference kernel's (conv_int8_direct.cu); the
// epilogue is the tensor-core tactics' (fmaf(acc, scale, bias), tanh.approx-based SiLU, residual in
// FP32, fp16 rounding, int8 code through the reciprocal), so the tuner validates it like them. The
// reference kernel reads one byte per thread and divides once per element: ~10x slower on these layers
// at batch 32, slower than their FP16 form.
#include "backend/cuda/check.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/int8_kernels.h"

namespace kestrel::cuda {

namespace {

struct Vec4Args {
  ConvParams p;
  const int8_t* x;
  const int8_t* w;
  const float* scale;
  const float* bias;
  const __half* r;
  const int8_t* rq;
  float r_scale;
  float out_scale, out_rcp;  // out_scale > 0: int8 output
  void* y;
  int vec_store;  // 4 int8 codes (4 bytes) or 4 halves (8 bytes) per store
};

__device__ __forceinline__ int dp4a(int a, int b, int c) { return __dp4a(a, b, c); }

template <bool kDepthwise>
__global__ void __launch_bounds__(256) conv_int8_vec4_kernel(const __grid_constant__ Vec4Args a) {
  const ConvParams& p = a.p;
  // 32-bit index math (the host checks the thread count fits): 64-bit division and remainder are
  // long subroutines, and six of them per thread cost more than the convolution itself.
  const int k4 = p.K / 4;
  const int total = p.N * p.OH * p.OW * k4;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int k = (i % k4) * 4;  // channels fastest: neighbouring threads, neighbouring words
  int t = i / k4;
  const int ox = t % p.OW;
  t /= p.OW;
  const int oy = t % p.OH;
  const int n = t / p.OH;
  const int taps = p.KH * p.KW;
  const int8_t* xn = a.x + n * p.xs[0];
  int acc[4] = {0, 0, 0, 0};
  if constexpr (kDepthwise) {
    const int8_t* wk = a.w + (long long)k * taps;  // OHWI with I = 1: channel k's taps are contiguous
    for (int ky = 0; ky < p.KH; ++ky) {
      const int iy = oy * p.sh - p.ph + ky * p.dh;
      if (iy < 0 || iy >= p.H) continue;
      for (int kx = 0; kx < p.KW; ++kx) {
        const int ix = ox * p.sw - p.pw + kx * p.dw;
        if (ix < 0 || ix >= p.W) continue;
        const char4 xv = __ldg(reinterpret_cast<const char4*>(xn + iy * p.xs[2] + ix * p.xs[3] + k));
        const int tap = ky * p.KW + kx;
        acc[0] += static_cast<int>(xv.x) * static_cast<int>(__ldg(wk + tap));
        acc[1] += static_cast<int>(xv.y) * static_cast<int>(__ldg(wk + taps + tap));
        acc[2] += static_cast<int>(xv.z) * static_cast<int>(__ldg(wk + 2 * taps + tap));
        acc[3] += static_cast<int>(xv.w) * static_cast<int>(__ldg(wk + 3 * taps + tap));
      }
    }
  } else {
    const int cg = p.C / p.group, kg = p.K / p.group;
    const int c0 = (k / kg) * cg;  // the group's first input channel (kg % 4 == 0: one group per thread)
    const long long wstride = (long long)taps * cg;
    const int8_t* wk = a.w + (long long)k * wstride;
    for (int ky = 0; ky < p.KH; ++ky) {
      const int iy = oy * p.sh - p.ph + ky * p.dh;
      if (iy < 0 || iy >= p.H) continue;
      for (int kx = 0; kx < p.KW; ++kx) {
        const int ix = ox * p.sw - p.pw + kx * p.dw;
        if (ix < 0 || ix >= p.W) continue;
        const int* xp = reinterpret_cast<const int*>(xn + iy * p.xs[2] + ix * p.xs[3] + c0);
        const int8_t* wt = wk + (ky * p.KW + kx) * cg;
        for (int c = 0; c < cg / 4; ++c) {
          const int xv = __ldg(xp + c);
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[j] = dp4a(xv, __ldg(reinterpret_cast<const int*>(wt + j * wstride) + c), acc[j]);
        }
      }
    }
  }
  const long long ro = n * p.rs[0] + oy * p.rs[2] + ox * p.rs[3] + k;
  float v[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    v[j] = apply_act_fast(p.act, fmaf(__int2float_rn(acc[j]), a.scale[k + j], a.bias ? a.bias[k + j] : 0.f), p.alpha, p.beta);
    if (a.r) v[j] += __half2float(a.r[ro + j]);
    if (a.rq) v[j] = __fmaf_rn(static_cast<float>(a.rq[ro + j]), a.r_scale, v[j]);
  }
  const long long yo = n * p.ys[0] + oy * p.ys[2] + ox * p.ys[3] + k;
  if (a.out_scale > 0.f) {
    int8_t q[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) q[j] = int8_code(__half2float(__float2half_rn(v[j])), a.out_scale, a.out_rcp);
    int8_t* y = static_cast<int8_t*>(a.y) + yo;
    if (a.vec_store) {
      *reinterpret_cast<char4*>(y) = make_char4(q[0], q[1], q[2], q[3]);
    } else {
#pragma unroll
      for (int j = 0; j < 4; ++j) y[j] = q[j];
    }
  } else {
    __half* y = static_cast<__half*>(a.y) + yo;
    const __half2 h01 = __floats2half2_rn(v[0], v[1]), h23 = __floats2half2_rn(v[2], v[3]);
    if (a.vec_store) {
      uint2 u;
      u.x = *reinterpret_cast<const unsigned*>(&h01);
      u.y = *reinterpret_cast<const unsigned*>(&h23);
      *reinterpret_cast<uint2*>(y) = u;
    } else {
      y[0] = __low2half(h01);
      y[1] = __high2half(h01);
      y[2] = __low2half(h23);
      y[3] = __high2half(h23);
    }
  }
}

bool depthwise(const ConvParams& p) { return p.group == p.C && p.K == p.C; }

}  // namespace

bool conv_int8_vec4_supports(const ConvParams& p, long long ldx) {
  if (p.K % 4 != 0 || ldx % 4 != 0 || p.xs[1] != 1 || p.ys[1] != 1) return false;
  if (static_cast<long long>(p.N) * p.OH * p.OW * (p.K / 4) >= (1ll << 31)) return false;  // 32-bit thread index
  if (depthwise(p)) return true;
  const int cg = p.C / p.group, kg = p.K / p.group;
  return cg % 4 == 0 && kg % 4 == 0;
}

void launch_conv_int8_vec4(const ConvParams& p, const int8_t* x, const int8_t* w, const Int8Epilogue& e, void* y,
                           cudaStream_t stream) {
  auto aligned = [](const void* q, size_t b) { return reinterpret_cast<uintptr_t>(q) % b == 0; };
  KESTREL_CHECK(aligned(x, 4) && aligned(w, 4), "internal: conv_int8_vec4 needs 4-byte aligned input and weights");
  Vec4Args a{};
  a.p = p;
  a.x = x;
  a.w = w;
  a.scale = e.scale;
  a.bias = e.bias;
  a.r = e.r;
  a.rq = e.rq;
  a.r_scale = e.r_scale;
  a.out_scale = e.out_scale;
  a.out_rcp = e.out_scale > 0.f ? int8_reciprocal(e.out_scale) : 0.f;
  a.y = y;
  const size_t esize = e.out_scale > 0.f ? 1 : 2;
  a.vec_store = aligned(y, 4 * esize) && (p.ys[0] * esize) % (4 * esize) == 0 && (p.ys[2] * esize) % (4 * esize) == 0 &&
                (p.ys[3] * esize) % (4 * esize) == 0;
  KESTREL_CHECK(conv_int8_vec4_supports(p, p.xs[3]), "internal: conv_int8_vec4 launched on a problem it does not support");
  const long long total = (long long)p.N * p.OH * p.OW * (p.K / 4);
  if (total == 0) return;
  constexpr int kThreads = 256;
  if (depthwise(p))
    conv_int8_vec4_kernel<true><<<blocks_for(total, kThreads), kThreads, 0, stream>>>(a);
  else
    conv_int8_vec4_kernel<false><<<blocks_for(total, kThreads), kThreads, 0, stream>>>(a);
  KLAUNCH("conv_int8_vec4");
}

}  // namespace kestrel::cuda
