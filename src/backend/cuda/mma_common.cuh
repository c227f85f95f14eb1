#pragma once
// PTX wrappers the tensor-core implicit GEMMs share (conv_igemm.cu FP16, conv_igemm_int8.cu INT8):
// asynchronous global -> shared copies and ldmatrix fragment loads.
#include <cuda_runtime.h>

namespace kestrel::cuda {

// .ca (through L1): the 3x3 windows of neighbouring output pixels overlap, so most A chunks are L1 hits.
// src_bytes 0 zero-fills the 16 bytes (outside the image / matrix).
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, int src_bytes) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// Four 8x8 b16 matrices (for int8 data: 8 rows of 16 bytes each) into the mma fragment layout.
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const void* smem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

}  // namespace kestrel::cuda
