#include "backend/cuda/check.h"

#include <cstring>
#include <map>
#include <mutex>
#include <utility>

namespace kestrel::cuda {
namespace {
const char* base(const char* file) {
  const char* s = std::strrchr(file, '/');
  return s ? s + 1 : file;
}
}  // namespace

void cuda_fail(cudaError_t e, const char* expr, const char* file, int line) {
  fail("CUDA error ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ") in ", expr, " [", base(file), ":", line, "]");
}
void cudnn_fail(cudnnStatus_t s, const char* expr, const char* file, int line) {
  fail("cuDNN error ", cudnnGetErrorString(s), " in ", expr, " [", base(file), ":", line, "]");
}
void cublas_fail(cublasStatus_t s, const char* expr, const char* file, int line) {
  fail("cuBLAS error ", static_cast<int>(s), " in ", expr, " [", base(file), ":", line, "]");
}

void opt_in_shared_memory(const void* kernel, size_t bytes) {
  static std::mutex mu;
  static std::map<std::pair<int, const void*>, size_t> granted;  // (device, kernel) -> bytes
  int dev = 0;
  KCUDA(cudaGetDevice(&dev));
  std::lock_guard<std::mutex> lock(mu);
  size_t& have = granted[{dev, kernel}];
  if (have >= bytes) return;
  KCUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  have = bytes;
}
}  // namespace kestrel::cuda
