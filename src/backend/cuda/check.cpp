#include "backend/cuda/check.h"

#include <cstring>

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
}  // namespace kestrel::cuda
