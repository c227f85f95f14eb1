#pragma once
// Launchers of the INT8 path (quantize.cu, conv_int8_direct.cu, conv_int8_vec4.cu, conv_igemm_int8.cu). The arithmetic is
// the contract in include/kestrel/quant.h, bit for bit (activation functions up to their last ulp):
//   quantize   q = clamp(rint(x / s), -128, 127)            x the stored value (fp16 or fp32), IEEE
//                                                            division (__fdiv_rn), round half to even
//   conv       acc = sum q_x * q_w                           exact int32
//              v = fmaf((float)acc, scale[k], bias[k])        scale[k] = s_x * s_w[k] rounded to float
//              v = act(v); v = v + r                          FP32; r the fp16 residual (may be absent), or
//                                                             v = fmaf((float)r_q, r_scale, v) for int8 codes
//              out fp16: y = half_rn(v)
//              out int8: y = clamp(rint(float(half_rn(v)) / out_scale), -128, 127)
//                        (what the next INT8 layer's QuantizeLinear computes from the fp16 value)
// Activations int8 channels-last: element (n, c, h, w) at n*xs[0] + c + h*xs[2] + w*xs[3] (unit channel
// stride). Weights int8 OHWI dense [K][KH][KW][C/group]. ConvParams (conv_kernels.h) carries the
// geometry and the element strides of x, y and r.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "backend/cuda/conv_kernels.h"

namespace kestrel::cuda {

struct Int8Epilogue {
  const float* scale = nullptr;  // [K] s_x * s_w[k]
  const float* bias = nullptr;   // [K] or nullptr
  const __half* r = nullptr;     // residual, fp16, strides ConvParams::rs, or nullptr
  const int8_t* rq = nullptr;    // or the residual as int8 codes (same strides), dequantized with r_scale
  float r_scale = 0;
  float out_scale = 0;           // > 0: int8 output quantized with it; 0: fp16 output
};

// x (fp16 or fp32, any strides as [n, c, h, w]) -> int8 channels-last y (pixel stride ldy >= C).
void launch_quantize_int8(const void* x, bool x_half, const long long (&xs)[4], int N, int C, int H, int W, float scale,
                          int8_t* y, long long ldy, cudaStream_t stream);

// Reference: one thread per output element, any group, any channel count.
void launch_conv_int8_direct(const ConvParams& p, const int8_t* x, const int8_t* w, const Int8Epilogue& e, void* y,
                             cudaStream_t stream);

// Four output channels per thread (conv_int8_vec4.cu): depthwise (group == C == K), or C / group and
// K / group multiples of 4 (the layers igemm8 cannot run: few channels, groups); K % 4 == 0, x and y
// channels-last with unit channel stride, x's pixel stride (ldx) a multiple of 4, x and w 4-byte
// aligned, the weights at most 48 KB (each block keeps them in shared memory). Exact int32 sums; the
// tensor-core tactics' epilogue.
bool conv_int8_vec4_supports(const ConvParams& p, long long ldx);
void launch_conv_int8_vec4(const ConvParams& p, const int8_t* x, const int8_t* w, const Int8Epilogue& e, void* y,
                           cudaStream_t stream);

// Tensor cores (mma.sync m16n8k32 s8.s8.s32): group 1, C % 16 == 0, x channels-last with pixel stride
// % 16 == 0, x and w 16-byte aligned; y and r channels-last with any pixel stride (16-byte stores when
// K, the strides and the pointers allow, element stores otherwise). igemm_int8_tactics returns none for
// a problem the kernel cannot run.
std::vector<std::string> igemm_int8_tactics(const ConvParams& p);
int64_t igemm_int8_scratch_bytes(const std::string& tactic, const ConvParams& p);  // split-K partials
int64_t igemm_int8_counters(const std::string& tactic, const ConvParams& p);       // ints, zeroed once
void prepare_igemm_int8(const std::string& tactic);
void launch_conv_igemm_int8(const std::string& tactic, const ConvParams& p, const int8_t* x, const int8_t* w,
                            const Int8Epilogue& e, void* y, void* ws, int* counters, cudaStream_t stream);

// The first convolution (conv_stem_int8.cu): float32 x in any layout quantized as it is read
// (x_scale; or, quantize_x false, used as it is: int8 weights on the float image), weights OHWI int8,
// all K outputs of a pixel per thread; K of 16, 32, 48 or 64, at most kStemInt8MaxTaps taps (exact float
// sums) and 48 KB of weights in shared memory, no residual; y channels-last with 16-byte aligned pixels
// (fp16, or int8 with e.out_scale).
constexpr int kStemInt8MaxTaps = 1024;
constexpr int kStemInt8MaxWeightBytes = 48 * 1024;
bool conv_stem_int8_supports(int C, int K, int KH, int KW, int group);  // the builder asks before lowering
bool conv_stem_int8_supports(const ConvParams& p);
void launch_conv_stem_int8(const ConvParams& p, const float* x, float x_scale, const int8_t* w, const Int8Epilogue& e,
                           void* y, bool quantize_x, cudaStream_t stream);

// 1 / s for int8_code: rounded to float, or NaN (always the exact division) where it is not a normal
// float and the error bound below would not hold.
inline float int8_reciprocal(float s) {
  const float r = 1.f / s;
  return std::isnormal(r) ? r : std::numeric_limits<float>::quiet_NaN();
}

#ifdef __CUDACC__
// The contract's rounding to an int8 code as written: clamp(rint(v / s), -128, 127) with the IEEE
// quotient (__fdiv_rn, whatever the fast-math flags), round half to even (the reference kernel's).
__device__ __forceinline__ int8_t int8_code_exact(float v, float s) {
  return static_cast<int8_t>(min(max(__float2int_rn(__fdiv_rn(v, s)), -128), 127));
}

// The same result, fast (the quantize and tensor-core kernels); `rs` is int8_reciprocal(s), computed
// once on the host. The IEEE division is a ~10-instruction subroutine; t = v * rs differs from the
// quotient q by at most 3 float roundings, |t - q| <= 2^-22 |q|: below 5e-5 for |t| < 200. So where t
// is more than 1e-4 away from every half-integer, t and q round to the same integer; where |t| >= 200
// both saturate the same way (infinities included). Only near-ties (about 2 values in 10^4) and NaN
// (-> 0) take the division.
__device__ __forceinline__ int8_t int8_code(float v, float s, float rs) {
  float q = v * rs;
  const float frac = q - rintf(q);  // exact, in [-0.5, 0.5]
  if (!(fabsf(fabsf(frac) - 0.5f) > 1e-4f || fabsf(q) >= 200.f)) q = __fdiv_rn(v, s);
  return static_cast<int8_t>(min(max(__float2int_rn(q), -128), 127));
}
#endif

}  // namespace kestrel::cuda
