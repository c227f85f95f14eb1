#pragma once
// Device-side helpers shared by the kernels: dtype-generic loads/stores (compute is always float),
// the activation functions of fused layers, and strided-tensor descriptors with 32-bit indexing
// (the builder refuses tensors of 2^31 elements or more).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/conv_kernels.h"
#include "backend/cuda/layer.h"
#include "backend/cuda/strided.h"

namespace kestrel::cuda {

// DType codes as the kernels see them (same values as kestrel::DType).
enum : int { kF32 = 0, kF16 = 1, kBF16 = 2, kI8 = 3, kU8 = 4, kI32 = 5, kI64 = 6, kBool = 7 };

__device__ __forceinline__ float load_as_float(const void* p, int dt, int64_t i) {
  switch (dt) {
    case kF32: return static_cast<const float*>(p)[i];
    case kF16: return __half2float(static_cast<const __half*>(p)[i]);
    case kI64: return static_cast<float>(static_cast<const long long*>(p)[i]);
    case kI32: return static_cast<float>(static_cast<const int*>(p)[i]);
    case kI8: return static_cast<float>(static_cast<const int8_t*>(p)[i]);
    case kU8:
    case kBool: return static_cast<float>(static_cast<const uint8_t*>(p)[i]);
    default: return 0.f;
  }
}

__device__ __forceinline__ void store_from_float(void* p, int dt, int64_t i, float v) {
  switch (dt) {
    case kF32: static_cast<float*>(p)[i] = v; break;
    case kF16: static_cast<__half*>(p)[i] = __float2half_rn(v); break;
    case kI64: static_cast<long long*>(p)[i] = static_cast<long long>(v); break;
    case kI32: static_cast<int*>(p)[i] = static_cast<int>(v); break;
    case kI8: static_cast<int8_t*>(p)[i] = static_cast<int8_t>(v); break;
    case kU8: static_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(v); break;
    case kBool: static_cast<uint8_t*>(p)[i] = v != 0.f; break;
    default: break;
  }
}

template <typename T> __device__ __forceinline__ float to_f(T v);
template <> __device__ __forceinline__ float to_f<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_f<__half>(__half v) { return __half2float(v); }
template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
// int8 codes: the kernels that take int8 only move or select codes, so v is an exact integer; the
// clamp keeps an empty window's -FLT_MAX (or any stray value) a valid code.
template <> __device__ __forceinline__ float to_f<int8_t>(int8_t v) { return static_cast<float>(v); }
template <> __device__ __forceinline__ int8_t from_f<int8_t>(float v) {
  return static_cast<int8_t>(::min(127, ::max(-128, __float2int_rn(v))));
}


__device__ __forceinline__ float sigmoidf_(float v) { return 1.f / (1.f + __expf(-v)); }
// Accurate variant for FP32 engines (the CPU reference uses std::exp).
__device__ __forceinline__ float sigmoidf_acc(float v) { return 1.f / (1.f + expf(-v)); }

__device__ __forceinline__ float apply_act(int act, float v, float alpha, float beta) {
  switch (act) {
    case kActRelu: return v > 0.f ? v : 0.f;
    case kActLeaky: return v >= 0.f ? v : v * alpha;
    case kActSigmoid: return sigmoidf_acc(v);
    case kActSilu: return v * sigmoidf_acc(v);
    case kActHardSwish: return v * fmaxf(0.f, fminf(1.f, v / 6.f + 0.5f));
    case kActHardSigmoid: return fmaxf(0.f, fminf(1.f, alpha * v + beta));
    case kActTanh: return tanhf(v);
    default: return v;
  }
}

// FP16 epilogues: sigmoid(v) = 0.5 + 0.5 tanh(v / 2) with the hardware tanh (one MUFU op instead of
// exp2 + reciprocal; the SFU is a quarter-rate pipe and every FP16 convolution output goes through
// it). tanh.approx's error (~2^-11 relative) leaves sigmoid within 2.5e-4 absolute and SiLU within
// |v| * 2.5e-4, about half an FP16 ulp of v: under the output's own rounding. The accurate expf and
// IEEE division cost ~30 instructions per element.
__device__ __forceinline__ float tanh_approx(float v) {
  float r;
  asm("tanh.approx.f32 %0, %1;" : "=f"(r) : "f"(v));
  return r;
}
__device__ __forceinline__ float silu_fast(float v) {
  const float h = 0.5f * v;
  return fmaf(h, tanh_approx(h), h);
}
__device__ __forceinline__ float apply_act_fast(int act, float v, float alpha, float beta) {
  switch (act) {
    case kActSigmoid: return fmaf(0.5f, tanh_approx(0.5f * v), 0.5f);
    case kActSilu: return silu_fast(v);
    default: return apply_act(act, v, alpha, beta);
  }
}
// The same activation chosen once for a whole tile: `body(f)` runs with `f` (float -> float) fixed at
// compile time for what YOLO's convolutions use (none, SiLU) and a run-time choice otherwise. The
// per-element code then has no branch, so the compiler can interleave the elements' SFU ops instead of
// dispatching through a switch between each.
template <typename Body>
__device__ __forceinline__ void with_act_fast(int act, float alpha, float beta, Body&& body) {
  switch (act) {
    case kActNone: body([](float v) { return v; }); break;
    case kActSilu: body([](float v) { return silu_fast(v); }); break;
    default: body([=](float v) { return apply_act_fast(act, v, alpha, beta); }); break;
  }
}
__device__ __forceinline__ float sigmoidf_fast(float v) { return __fdividef(1.f, 1.f + __expf(-v)); }

// Offset of logical (row-major) index i.
__device__ __forceinline__ int strided_offset(const Strided& s, int i) {
  int off = 0;
  for (int d = s.rank - 1; d >= 0; --d) {
    const int e = s.shape[d];
    const int c = i % e;
    i /= e;
    off += c * s.stride[d];
  }
  return off;
}

// D += A B on the tensor cores, one m16n8k16 tile: A 16 x 16 fp16 (row), B 16 x 8 fp16 (col), D fp32.
// Fragments as PTX lays them out: with g = lane / 4 and t = lane % 4, a[0] holds A[g][2t, 2t+1], a[1]
// A[g+8][2t..], a[2] A[g][2t+8..], a[3] A[g+8][2t+8..]; b0 B[2t, 2t+1][g], b1 B[2t+8..][g]; d[0..1]
// D[g][2t, 2t+1], d[2..3] D[g+8][2t..]. The lower column index sits in the lower 16 bits.
__device__ __forceinline__ void mma16816(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

inline unsigned blocks_for(int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

}  // namespace kestrel::cuda
