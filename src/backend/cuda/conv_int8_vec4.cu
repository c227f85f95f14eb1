// INT8 convolutions the tensor-core tactics cannot run: depthwise layers (YOLO11's head and attention)
// and layers with few input channels per group (C % 16 != 0, e.g. C3k2's 8-channel bottleneck). One
// thread computes four consecutive output channels of one output pixel on channels-last int8 codes:
//   depthwise   four channels of each tap in one 4-byte load, their four weights in another
//   dense       per tap, four input channels at a time (one 4-byte load) into __dp4a with the four
//               output channels' packed weights (one 16-byte shared-memory load)
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
  Int8Epilogue e;
  float out_rcp;  // e.out_scale > 0: int8 output, quantized through this reciprocal
  void* y;
  int vec_store;  // 4 int8 codes (4 bytes) or 4 halves (8 bytes) per store
};

__device__ __forceinline__ int dp4a(int a, int b, int c) { return __dp4a(a, b, c); }

bool depthwise(const ConvParams& p) { return p.group == p.C && p.K == p.C; }

// Weights in shared memory, rearranged so that a thread's four output channels are one load:
//   depthwise  bytes [tap][K]              (char4 of channels k..k+3 at a tap)
//   dense      ints  [tap][C/group/4][K]   (four input channels packed; int4 of outputs k..k+3)
// Read from global memory in their OHWI order, the four channels of a thread are 9 or C/group bytes
// apart: a warp's weight loads touched 5-6 sectors each and outnumbered the activation loads 4 to 1,
// which bound the kernel on L1 wavefronts.
int weight_smem_bytes(const ConvParams& p, bool dw) {
  const int taps = p.KH * p.KW;
  return dw ? taps * p.K : taps * (p.C / p.group) * p.K;
}
constexpr int kMaxWeightSmem = 48 * 1024;

template <bool kDepthwise>
__global__ void __launch_bounds__(256) conv_int8_vec4_kernel(const __grid_constant__ Vec4Args a) {
  extern __shared__ int4 smem_int4[];  // 16-byte aligned
  const ConvParams& p = a.p;
  const int taps = p.KH * p.KW;
  const int cg = p.C / p.group, cg4 = cg / 4;
  if constexpr (kDepthwise) {
    int8_t* sw = reinterpret_cast<int8_t*>(smem_int4);
    for (int idx = threadIdx.x; idx < taps * p.K; idx += blockDim.x) {
      const int kk = idx % p.K, tap = idx / p.K;
      sw[idx] = a.w[kk * taps + tap];
    }
  } else {
    int* sw = reinterpret_cast<int*>(smem_int4);
    for (int idx = threadIdx.x; idx < taps * cg4 * p.K; idx += blockDim.x) {
      const int kk = idx % p.K, rest = idx / p.K, c4 = rest % cg4, tap = rest / cg4;
      sw[idx] = *reinterpret_cast<const int*>(a.w + ((long long)kk * taps + tap) * cg + c4 * 4);
    }
  }
  __syncthreads();
  // 32-bit index math (the host checks the thread count fits): 64-bit division and remainder are
  // long subroutines.
  const int k4 = p.K / 4;
  const int total = p.N * p.OH * p.OW * k4;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= total) return;  // after the only barrier
  const int k = (i % k4) * 4;  // channels fastest: neighbouring threads, neighbouring words
  int t = i / k4;
  const int ox = t % p.OW;
  t /= p.OW;
  const int oy = t % p.OH;
  const int n = t / p.OH;
  const int8_t* xn = a.x + n * p.xs[0];
  // The first input channel a thread reads: its own four (depthwise), or its group's first (dense;
  // kg % 4 == 0, so a thread's four outputs share one group).
  const int c0 = kDepthwise ? k : (k / (p.K / p.group)) * cg;
  int acc[4] = {0, 0, 0, 0};
  for (int ky = 0; ky < p.KH; ++ky) {
    const int iy = oy * p.sh - p.ph + ky * p.dh;
    if (iy < 0 || iy >= p.H) continue;
    for (int kx = 0; kx < p.KW; ++kx) {
      const int ix = ox * p.sw - p.pw + kx * p.dw;
      if (ix < 0 || ix >= p.W) continue;
      const int8_t* xp = xn + iy * p.xs[2] + ix * p.xs[3] + c0;
      const int tap = ky * p.KW + kx;
      if constexpr (kDepthwise) {
        const char4 xv = __ldg(reinterpret_cast<const char4*>(xp));
        const char4 wv = *reinterpret_cast<const char4*>(reinterpret_cast<const int8_t*>(smem_int4) + tap * p.K + k);
        acc[0] += static_cast<int>(xv.x) * static_cast<int>(wv.x);
        acc[1] += static_cast<int>(xv.y) * static_cast<int>(wv.y);
        acc[2] += static_cast<int>(xv.z) * static_cast<int>(wv.z);
        acc[3] += static_cast<int>(xv.w) * static_cast<int>(wv.w);
      } else {
        const int* wt = reinterpret_cast<const int*>(smem_int4) + tap * cg4 * p.K + k;
        for (int c = 0; c < cg4; ++c) {
          const int xv = __ldg(reinterpret_cast<const int*>(xp) + c);
          const int4 wv = *reinterpret_cast<const int4*>(wt + c * p.K);
          acc[0] = dp4a(xv, wv.x, acc[0]);
          acc[1] = dp4a(xv, wv.y, acc[1]);
          acc[2] = dp4a(xv, wv.z, acc[2]);
          acc[3] = dp4a(xv, wv.w, acc[3]);
        }
      }
    }
  }
  const long long ro = n * p.rs[0] + oy * p.rs[2] + ox * p.rs[3] + k;
  float v[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    v[j] = apply_act_fast(p.act, fmaf(__int2float_rn(acc[j]), a.e.scale[k + j], a.e.bias ? a.e.bias[k + j] : 0.f), p.alpha, p.beta);
    if (a.e.r) v[j] += __half2float(a.e.r[ro + j]);
    if (a.e.rq) v[j] = __fmaf_rn(static_cast<float>(a.e.rq[ro + j]), a.e.r_scale, v[j]);
  }
  const long long yo = n * p.ys[0] + oy * p.ys[2] + ox * p.ys[3] + k;
  if (a.e.out_scale > 0.f) {
    int8_t q[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) q[j] = int8_code(__half2float(__float2half_rn(v[j])), a.e.out_scale, a.out_rcp);
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

}  // namespace

bool conv_int8_vec4_supports(const ConvParams& p, long long ldx) {
  if (p.K % 4 != 0 || ldx % 4 != 0 || p.xs[1] != 1 || p.ys[1] != 1) return false;
  if (static_cast<long long>(p.N) * p.OH * p.OW * (p.K / 4) >= (1ll << 31)) return false;  // 32-bit thread index
  if (weight_smem_bytes(p, depthwise(p)) > kMaxWeightSmem) return false;
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
  a.e = e;
  a.out_rcp = e.out_scale > 0.f ? int8_reciprocal(e.out_scale) : 0.f;
  a.y = y;
  const size_t esize = e.out_scale > 0.f ? 1 : 2;
  a.vec_store = aligned(y, 4 * esize) && (p.ys[0] * esize) % (4 * esize) == 0 && (p.ys[2] * esize) % (4 * esize) == 0 &&
                (p.ys[3] * esize) % (4 * esize) == 0;
  KESTREL_CHECK(conv_int8_vec4_supports(p, p.xs[3]), "internal: conv_int8_vec4 launched on a problem it does not support");
  const long long total = (long long)p.N * p.OH * p.OW * (p.K / 4);
  if (total == 0) return;
  constexpr int kThreads = 256;
  const bool dw = depthwise(p);
  const size_t smem = static_cast<size_t>(weight_smem_bytes(p, dw));
  if (dw)
    conv_int8_vec4_kernel<true><<<blocks_for(total, kThreads), kThreads, smem, stream>>>(a);
  else
    conv_int8_vec4_kernel<false><<<blocks_for(total, kThreads), kThreads, smem, stream>>>(a);
  KLAUNCH("conv_int8_vec4");
}

}  // namespace kestrel::cuda
