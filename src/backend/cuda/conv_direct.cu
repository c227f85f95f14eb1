// The simple convolution kernels: the direct reference (every other tactic is validated against it
// at build time), a channels-last depthwise kernel, and the bias/activation/residual epilogue that
// follows a cuDNN convolution.
#include "backend/cuda/check.h"
#include "backend/cuda/conv_kernels.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/stem_common.cuh"

namespace kestrel::cuda {

namespace {

template <typename TX, typename TW, typename TY>
__global__ void conv_direct_kernel(const __grid_constant__ ConvParams p, const TX* __restrict__ x, const TW* __restrict__ w,
                                   const float* __restrict__ bias, const TY* __restrict__ r, TY* __restrict__ y,
                                   int k_fastest) {
  const long long total = (long long)p.N * p.K * p.OH * p.OW;
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= total) return;
  int n, k, oy, ox;
  if (k_fastest) {
    k = static_cast<int>(i % p.K);
    long long t = i / p.K;
    ox = static_cast<int>(t % p.OW);
    t /= p.OW;
    oy = static_cast<int>(t % p.OH);
    n = static_cast<int>(t / p.OH);
  } else {
    ox = static_cast<int>(i % p.OW);
    long long t = i / p.OW;
    oy = static_cast<int>(t % p.OH);
    t /= p.OH;
    k = static_cast<int>(t % p.K);
    n = static_cast<int>(t / p.K);
  }
  const int cg = p.C / p.group, kg = p.K / p.group, g = k / kg;
  const TW* wk = w + (long long)k * p.KH * p.KW * cg;
  float acc = 0.f;
  for (int ky = 0; ky < p.KH; ++ky) {
    const int iy = oy * p.sh - p.ph + ky * p.dh;
    if (iy < 0 || iy >= p.H) continue;
    for (int kx = 0; kx < p.KW; ++kx) {
      const int ix = ox * p.sw - p.pw + kx * p.dw;
      if (ix < 0 || ix >= p.W) continue;
      const TX* xp = x + n * p.xs[0] + iy * p.xs[2] + ix * p.xs[3] + (long long)g * cg * p.xs[1];
      const TW* wp = wk + (ky * p.KW + kx) * cg;
      for (int c = 0; c < cg; ++c) acc += to_f(xp[c * p.xs[1]]) * to_f(wp[c]);
    }
  }
  float v = apply_act(p.act, acc + (bias ? bias[k] : 0.f), p.alpha, p.beta);
  if (r) v += to_f(r[n * p.rs[0] + k * p.rs[1] + oy * p.rs[2] + ox * p.rs[3]]);
  y[n * p.ys[0] + k * p.ys[1] + oy * p.ys[2] + ox * p.ys[3]] = from_f<TY>(v);
}

// The first convolution (stem_common.cuh): float32 input as it is, output channel stride 1, 16-byte stores.
template <typename TY, int K>
__global__ void conv_stem_kernel(const __grid_constant__ ConvParams p, const float* __restrict__ x, const float* __restrict__ w,
                                 const float* __restrict__ bias, TY* __restrict__ y) {
  extern __shared__ float4 sw4[];
  stem_load_weights(p, w, K, reinterpret_cast<float*>(sw4));
  __syncthreads();
  StemPixels px;
  if (!stem_pixels(p, px)) return;
  const int n = px.n, oy = px.oy, ox0 = px.ox0;
  const bool two = px.two;
  float acc0[K], acc1[K];
#pragma unroll
  for (int k = 0; k < K; ++k) acc0[k] = acc1[k] = bias ? bias[k] : 0.f;
  stem_accumulate<K>(p, x, sw4, n, oy, ox0, two, [](float v) { return v; }, acc0, acc1);
#pragma unroll
  for (int q = 0; q < 2; ++q) {
    if (q == 1 && !two) break;
    const float* acc = q ? acc1 : acc0;
    TY* out = y + n * p.ys[0] + oy * p.ys[2] + (ox0 + q) * p.ys[3];
    if constexpr (sizeof(TY) == 2) {
#pragma unroll
      for (int k = 0; k < K; k += 8) {
        __half2 h[4];
#pragma unroll
        for (int e = 0; e < 4; ++e)
          h[e] = __floats2half2_rn(apply_act_fast(p.act, acc[k + 2 * e], p.alpha, p.beta),
                                 apply_act_fast(p.act, acc[k + 2 * e + 1], p.alpha, p.beta));
        *reinterpret_cast<uint4*>(out + k) = *reinterpret_cast<const uint4*>(h);
      }
    } else {
#pragma unroll
      for (int k = 0; k < K; k += 4)
        *reinterpret_cast<float4*>(out + k) =
            make_float4(apply_act(p.act, acc[k], p.alpha, p.beta), apply_act(p.act, acc[k + 1], p.alpha, p.beta),
                        apply_act(p.act, acc[k + 2], p.alpha, p.beta), apply_act(p.act, acc[k + 3], p.alpha, p.beta));
    }
  }
}

template <typename T>
__global__ void conv_depthwise_kernel(const __grid_constant__ ConvParams p, const T* __restrict__ x, const T* __restrict__ w,
                                      const float* __restrict__ bias, const T* __restrict__ r, T* __restrict__ y) {
  const long long total = (long long)p.N * p.K * p.OH * p.OW;
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int c = static_cast<int>(i % p.K);
  long long t = i / p.K;
  const int ox = static_cast<int>(t % p.OW);
  t /= p.OW;
  const int oy = static_cast<int>(t % p.OH);
  const int n = static_cast<int>(t / p.OH);
  const T* wk = w + (long long)c * p.KH * p.KW;
  float acc = 0.f;
  for (int ky = 0; ky < p.KH; ++ky) {
    const int iy = oy * p.sh - p.ph + ky * p.dh;
    if (iy < 0 || iy >= p.H) continue;
    for (int kx = 0; kx < p.KW; ++kx) {
      const int ix = ox * p.sw - p.pw + kx * p.dw;
      if (ix < 0 || ix >= p.W) continue;
      acc += to_f(x[n * p.xs[0] + iy * p.xs[2] + ix * p.xs[3] + c]) * to_f(wk[ky * p.KW + kx]);
    }
  }
  float v = apply_act(p.act, acc + (bias ? bias[c] : 0.f), p.alpha, p.beta);
  if (r) v += to_f(r[n * p.rs[0] + c + oy * p.rs[2] + ox * p.rs[3]]);
  y[n * p.ys[0] + c + oy * p.ys[2] + ox * p.ys[3]] = from_f<T>(v);
}

template <typename T>
__global__ void conv_epilogue_kernel(const __grid_constant__ ConvParams p, const T* __restrict__ tmp,
                                     const float* __restrict__ bias, const T* __restrict__ r, T* __restrict__ y) {
  const long long total = (long long)p.N * p.K * p.OH * p.OW;
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int k = static_cast<int>(i % p.K);
  long long t = i / p.K;
  const int ox = static_cast<int>(t % p.OW);
  t /= p.OW;
  const int oy = static_cast<int>(t % p.OH);
  const int n = static_cast<int>(t / p.OH);
  float v = apply_act(p.act, to_f(tmp[i]) + (bias ? bias[k] : 0.f), p.alpha, p.beta);
  if (r) v += to_f(r[n * p.rs[0] + k * p.rs[1] + oy * p.rs[2] + ox * p.rs[3]]);
  y[n * p.ys[0] + k * p.ys[1] + oy * p.ys[2] + ox * p.ys[3]] = from_f<T>(v);
}

// The FP16 epilogue after a cuDNN convolution, 8 channels (16 bytes) per thread: tmp dense NHWC
// [M][K], y (and the residual) channels-last with pixel strides ldy (ldr), all multiples of 8.
__global__ void conv_epilogue_vec_kernel(const __half* __restrict__ tmp, const float* __restrict__ bias,
                                         const __half* __restrict__ r, __half* __restrict__ y, int M, int K8,
                                         long long ldy, long long ldr, int act, float alpha, float beta) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= M * K8) return;
  const int m = i / K8, c = (i - m * K8) * 8;
  uint4 v = __ldg(reinterpret_cast<const uint4*>(tmp) + i);
  __half2* vh = reinterpret_cast<__half2*>(&v);
  uint4 rv = make_uint4(0, 0, 0, 0);
  if (r) rv = __ldg(reinterpret_cast<const uint4*>(r + m * ldr + c));
  const __half2* rh = reinterpret_cast<const __half2*>(&rv);
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const float2 f = __half22float2(vh[e]);
    float a0 = apply_act_fast(act, f.x + (bias ? __ldg(bias + c + 2 * e) : 0.f), alpha, beta);
    float a1 = apply_act_fast(act, f.y + (bias ? __ldg(bias + c + 2 * e + 1) : 0.f), alpha, beta);
    if (r) {
      const float2 g = __half22float2(rh[e]);
      a0 += g.x;
      a1 += g.y;
    }
    vh[e] = __floats2half2_rn(a0, a1);
  }
  *reinterpret_cast<uint4*>(y + m * ldy + c) = v;
}

}  // namespace

namespace {
unsigned blocks_ll(long long n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

}  // namespace

template <typename TX, typename TW, typename TY>
void launch_conv_direct(const ConvParams& p, const TX* x, const TW* w, const float* bias, const TY* r, TY* y, bool k_fastest,
                        cudaStream_t stream) {
  const long long total = (long long)p.N * p.K * p.OH * p.OW;
  if (!total) return;
  conv_direct_kernel<TX, TW, TY><<<blocks_ll(total, 128), 128, 0, stream>>>(p, x, w, bias, r, y, k_fastest ? 1 : 0);
  KLAUNCH("conv_direct");
}

// The weights of every tap live in shared memory: YOLOv8 / YOLO11's 3x3x3 stem (27 taps) and YOLOv5's
// 6x6x3 (108 taps) both fit easily.
bool conv_stem_supports(const ConvParams& p) {
  const int taps = p.KH * p.KW * p.C;
  return p.group == 1 && (p.K == 16 || p.K == 32 || p.K == 48 || p.K == 64) && p.ys[1] == 1 && taps <= 1024 &&
         taps * p.K * static_cast<int>(sizeof(float)) <= 48 * 1024;
}

template <typename TY>
void launch_conv_stem(const ConvParams& p, const float* x, const float* w, const float* bias, TY* y, cudaStream_t stream) {
  const long long pairs = (long long)p.N * p.OH * ((p.OW + 1) / 2);
  if (!pairs) return;
  const size_t smem = static_cast<size_t>(p.KH * p.KW * p.C) * p.K * sizeof(float);
  const unsigned blocks = blocks_ll(pairs, 128);
  switch (p.K) {
    case 16: conv_stem_kernel<TY, 16><<<blocks, 128, smem, stream>>>(p, x, w, bias, y); break;
    case 32: conv_stem_kernel<TY, 32><<<blocks, 128, smem, stream>>>(p, x, w, bias, y); break;
    case 48: conv_stem_kernel<TY, 48><<<blocks, 128, smem, stream>>>(p, x, w, bias, y); break;
    case 64: conv_stem_kernel<TY, 64><<<blocks, 128, smem, stream>>>(p, x, w, bias, y); break;
    default: fail("conv_stem: K must be 16, 32, 48 or 64");
  }
  KLAUNCH("conv_stem");
}

template <typename T>
void launch_conv_depthwise(const ConvParams& p, const T* x, const T* w, const float* bias, const T* r, T* y,
                           cudaStream_t stream) {
  const long long total = (long long)p.N * p.K * p.OH * p.OW;
  if (!total) return;
  conv_depthwise_kernel<T><<<blocks_ll(total, 256), 256, 0, stream>>>(p, x, w, bias, r, y);
  KLAUNCH("conv_depthwise");
}

void launch_conv_epilogue_vec(const ConvParams& p, const __half* tmp, const float* bias, const __half* r, __half* y,
                              long long ldy, long long ldr, cudaStream_t stream) {
  const long long M = (long long)p.N * p.OH * p.OW;
  KESTREL_CHECK(p.K % 8 == 0 && ldy % 8 == 0 && (!r || ldr % 8 == 0) && M * (p.K / 8) < (1ll << 31),
                "internal: vector epilogue shape");
  const long long total = M * (p.K / 8);
  if (!total) return;
  conv_epilogue_vec_kernel<<<blocks_ll(total, 256), 256, 0, stream>>>(tmp, bias, r, y, static_cast<int>(M), p.K / 8, ldy,
                                                                       ldr, p.act, p.alpha, p.beta);
  KLAUNCH("conv_epilogue_vec");
}

template <typename T>
void launch_conv_epilogue(const ConvParams& p, const T* tmp, const float* bias, const T* r, T* y, cudaStream_t stream) {
  const long long total = (long long)p.N * p.K * p.OH * p.OW;
  if (!total) return;
  conv_epilogue_kernel<T><<<blocks_ll(total, 256), 256, 0, stream>>>(p, tmp, bias, r, y);
  KLAUNCH("conv_epilogue");
}

template void launch_conv_direct<float, float, float>(const ConvParams&, const float*, const float*, const float*, const float*, float*, bool, cudaStream_t);
template void launch_conv_direct<__half, __half, __half>(const ConvParams&, const __half*, const __half*, const float*, const __half*, __half*, bool, cudaStream_t);
template void launch_conv_direct<float, float, __half>(const ConvParams&, const float*, const float*, const float*, const __half*, __half*, bool, cudaStream_t);
template void launch_conv_stem<float>(const ConvParams&, const float*, const float*, const float*, float*, cudaStream_t);
template void launch_conv_stem<__half>(const ConvParams&, const float*, const float*, const float*, __half*, cudaStream_t);
template void launch_conv_depthwise<float>(const ConvParams&, const float*, const float*, const float*, const float*, float*, cudaStream_t);
template void launch_conv_depthwise<__half>(const ConvParams&, const __half*, const __half*, const float*, const __half*, __half*, cudaStream_t);
template void launch_conv_epilogue<float>(const ConvParams&, const float*, const float*, const float*, float*, cudaStream_t);
template void launch_conv_epilogue<__half>(const ConvParams&, const __half*, const float*, const __half*, __half*, cudaStream_t);

}  // namespace kestrel::cuda
