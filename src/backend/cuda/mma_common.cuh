#pragma once
// PTX wrappers the tensor-core implicit GEMMs share (conv_igemm.cu FP16, conv_igemm_int8.cu INT8):
// asynchronous global -> shared copies and ldmatrix fragment loads.
#include <cuda_runtime.h>

namespace kestrel::cuda {

// .ca (through L1): the 3x3 windows of neighbouring output pixels overlap, so most A chunks are L1 hits.
// src_bytes 0 zero-fills the 16 bytes (outside the image / matrix). `smem` is a shared-window address
// (__cvta_generic_to_shared): loops keep their destinations as 32-bit offsets instead of converting a
// pointer per copy.
__device__ __forceinline__ void cp_async16(unsigned smem, const void* gmem, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, int src_bytes) {
  cp_async16(static_cast<unsigned>(__cvta_generic_to_shared(smem)), gmem, src_bytes);
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// Four 8x8 b16 matrices (for int8 data: 8 rows of 16 bytes each) into the mma fragment layout.
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], unsigned smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem));
}
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const void* smem) {
  ldmatrix_x4(r, static_cast<unsigned>(__cvta_generic_to_shared(smem)));
}

}  // namespace kestrel::cuda
