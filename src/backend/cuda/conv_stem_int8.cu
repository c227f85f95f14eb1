// The network's first convolution in INT8 (kestrel.ConvInt8Stem): reads the float32 image in its own
// layout and quantizes each value as it loads it (q = int8_code(x, s_x)), so neither a layout
// conversion nor a quantize pass over the largest tensor precedes it. A handful of input channels
// (3) leaves the tensor cores nothing to do: the FP16 stem's body (stem_common.cuh) with the weights as
// the int8 codes held in float. Products of codes (|q_x q_w| <= 128 * 127) summed over at most 1024 taps stay
// below 2^24, so the float accumulation is the exact int32 sum the contract asks for.
// With quantize_x false (tactic stem8_fx) the image is used as it is: weights int8, input float -- the
// layer one step above INT8, chosen by the builder where it is faster (the per-value quantization
// costs as much as the products here).
#include "backend/cuda/check.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/int8_kernels.h"
#include "backend/cuda/stem_common.cuh"

namespace kestrel::cuda {

namespace {

template <int K, bool kInt8Out, bool kQuantX>
__global__ void stem_int8_kernel(const __grid_constant__ ConvParams p, const float* __restrict__ x, float sx, float rsx,
                                 const int8_t* __restrict__ w, const float* __restrict__ scale,
                                 const float* __restrict__ bias, void* __restrict__ y, float so, float rso) {
  extern __shared__ float4 sw4[];
  stem_load_weights(p, w, K, reinterpret_cast<float*>(sw4));
  __syncthreads();
  StemPixels px;
  if (!stem_pixels(p, px)) return;
  const int n = px.n, oy = px.oy, ox0 = px.ox0;
  const bool two = px.two;
  float acc0[K], acc1[K];
#pragma unroll
  for (int k = 0; k < K; ++k) acc0[k] = acc1[k] = 0.f;
  // Zero padding is code 0 too.
  if constexpr (kQuantX)
    stem_accumulate<K>(p, x, sw4, n, oy, ox0, two, [sx, rsx](float v) { return static_cast<float>(int8_code(v, sx, rsx)); },
                       acc0, acc1);
  else
    stem_accumulate<K>(p, x, sw4, n, oy, ox0, two, [](float v) { return v; }, acc0, acc1);
  // acc * s_x * s_w; unquantized input: acc * s_w = (acc / s_x) * (s_x * s_w).
  const float pre = kQuantX ? 1.f : 1.f / sx;
#pragma unroll
  for (int q = 0; q < 2; ++q) {
    if (q == 1 && !two) break;
    const float* acc = q ? acc1 : acc0;
    const long long off = n * p.ys[0] + oy * p.ys[2] + (ox0 + q) * p.ys[3];
#pragma unroll
    for (int k = 0; k < K; k += 16) {
      __half h[16];
#pragma unroll
      for (int e = 0; e < 16; ++e) {
        const float v = fmaf(kQuantX ? acc[k + e] : acc[k + e] * pre, scale[k + e], bias ? bias[k + e] : 0.f);
        h[e] = __float2half_rn(apply_act_fast(p.act, v, p.alpha, p.beta));
      }
      if constexpr (kInt8Out) {
        int8_t c[16];
#pragma unroll
        for (int e = 0; e < 16; ++e) c[e] = int8_code(__half2float(h[e]), so, rso);
        *reinterpret_cast<uint4*>(static_cast<int8_t*>(y) + off + k) = *reinterpret_cast<const uint4*>(c);
      } else {
        __half* out = static_cast<__half*>(y) + off + k;
        *reinterpret_cast<uint4*>(out) = *reinterpret_cast<const uint4*>(h);
        *reinterpret_cast<uint4*>(out + 8) = *reinterpret_cast<const uint4*>(h + 8);
      }
    }
  }
}

template <int K, bool kQuantX>
void launch_k(const ConvParams& p, unsigned blocks, size_t smem, const float* x, float sx, const int8_t* w,
              const Int8Epilogue& e, void* y, cudaStream_t stream) {
  const float rsx = int8_reciprocal(sx);
  if (e.out_scale > 0)
    stem_int8_kernel<K, true, kQuantX><<<blocks, 128, smem, stream>>>(p, x, sx, rsx, w, e.scale, e.bias, y, e.out_scale,
                                                                      int8_reciprocal(e.out_scale));
  else
    stem_int8_kernel<K, false, kQuantX><<<blocks, 128, smem, stream>>>(p, x, sx, rsx, w, e.scale, e.bias, y, 0.f, 0.f);
}

template <int K>
void launch_k(const ConvParams& p, unsigned blocks, size_t smem, const float* x, float sx, const int8_t* w,
              const Int8Epilogue& e, void* y, bool quantize_x, cudaStream_t stream) {
  if (quantize_x)
    launch_k<K, true>(p, blocks, smem, x, sx, w, e, y, stream);
  else
    launch_k<K, false>(p, blocks, smem, x, sx, w, e, y, stream);
}

}  // namespace

bool conv_stem_int8_supports(int C, int K, int KH, int KW, int group) {
  const int taps = KH * KW * C;
  return group == 1 && (K == 16 || K == 32 || K == 48 || K == 64) && taps <= kStemInt8MaxTaps &&
         taps * K * static_cast<int>(sizeof(float)) <= kStemInt8MaxWeightBytes;
}

bool conv_stem_int8_supports(const ConvParams& p) { return conv_stem_int8_supports(p.C, p.K, p.KH, p.KW, p.group); }

void launch_conv_stem_int8(const ConvParams& p, const float* x, float x_scale, const int8_t* w, const Int8Epilogue& e,
                           void* y, bool quantize_x, cudaStream_t stream) {
  KESTREL_CHECK(conv_stem_int8_supports(p), "INT8 stem: needs group 1, K of 16, 32, 48 or 64 and at most ",
                kStemInt8MaxTaps, " taps (", kStemInt8MaxWeightBytes, " bytes of weights)");
  KESTREL_CHECK(!e.r, "INT8 stem: no residual");
  const long long pairs = (long long)p.N * p.OH * ((p.OW + 1) / 2);
  if (!pairs) return;
  const size_t smem = static_cast<size_t>(p.KH * p.KW * p.C) * p.K * sizeof(float);
  const auto blocks = static_cast<unsigned>((pairs + 127) / 128);
  switch (p.K) {
    case 16: launch_k<16>(p, blocks, smem, x, x_scale, w, e, y, quantize_x, stream); break;
    case 32: launch_k<32>(p, blocks, smem, x, x_scale, w, e, y, quantize_x, stream); break;
    case 48: launch_k<48>(p, blocks, smem, x, x_scale, w, e, y, quantize_x, stream); break;
    default: launch_k<64>(p, blocks, smem, x, x_scale, w, e, y, quantize_x, stream); break;
  }
  KLAUNCH("conv_stem_int8");
}

}  // namespace kestrel::cuda
