#pragma once
// Every CUDA / cuDNN / cuBLAS call and every kernel launch is checked; a failure becomes a
// kestrel::Error naming the call. The execution context prefixes the op and node name.
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "kestrel/error.h"

namespace kestrel::cuda {
[[noreturn]] void cuda_fail(cudaError_t e, const char* expr, const char* file, int line);
[[noreturn]] void cudnn_fail(cudnnStatus_t s, const char* expr, const char* file, int line);
[[noreturn]] void cublas_fail(cublasStatus_t s, const char* expr, const char* file, int line);

// Lets `kernel` launch with up to `bytes` of dynamic shared memory on the current device. The opt-in
// is a property of the kernel on each device, so it is set once per (device, kernel) and raised when
// a later call asks for more; thread-safe.
void opt_in_shared_memory(const void* kernel, size_t bytes);
template <typename... Args>
void opt_in_shared_memory(void (*kernel)(Args...), size_t bytes) {
  opt_in_shared_memory(reinterpret_cast<const void*>(kernel), bytes);
}
}  // namespace kestrel::cuda

#define KCUDA(expr)                                                                       \
  do {                                                                                    \
    cudaError_t kestrel_e_ = (expr);                                                      \
    if (kestrel_e_ != cudaSuccess) ::kestrel::cuda::cuda_fail(kestrel_e_, #expr, __FILE__, __LINE__); \
  } while (0)
#define KCUDNN(expr)                                                                      \
  do {                                                                                    \
    cudnnStatus_t kestrel_s_ = (expr);                                                    \
    if (kestrel_s_ != CUDNN_STATUS_SUCCESS) ::kestrel::cuda::cudnn_fail(kestrel_s_, #expr, __FILE__, __LINE__); \
  } while (0)
#define KCUBLAS(expr)                                                                     \
  do {                                                                                    \
    cublasStatus_t kestrel_s_ = (expr);                                                   \
    if (kestrel_s_ != CUBLAS_STATUS_SUCCESS) ::kestrel::cuda::cublas_fail(kestrel_s_, #expr, __FILE__, __LINE__); \
  } while (0)
// After every <<<...>>> launch: a bad configuration shows up here, not three kernels later.
#define KLAUNCH(name) KCUDA(cudaGetLastError())
