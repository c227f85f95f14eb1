#pragma once
// Shared helpers of the GPU tests: skipping without a GPU (failing with KESTREL_REQUIRE_GPU=1), random inputs, relative L2, and running an
// engine through the device-pointer API with every output poisoned (NaN) first.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kestrel/builder.h"
#include "kestrel/runtime.h"

namespace kestrel::test {

// Empty when a CUDA GPU is usable, else why not (a CUDA start-up error is named, not hidden).
inline std::string gpu_unavailable() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess)
    return std::string("CUDA start-up failed: ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
  if (n == 0) return "no CUDA GPU";
  return "";
}

inline bool have_gpu() { return gpu_unavailable().empty(); }

// KESTREL_REQUIRE_GPU=1 in the environment (the GPU machine's runs, tests/cuda/device/run.sh): a GPU
// that is missing or fails to start is a failure, never a skip, so a broken driver cannot look green.
inline bool gpu_required() {
  const char* v = std::getenv("KESTREL_REQUIRE_GPU");
  return v && *v && std::string(v) != "0";
}

#define KESTREL_REQUIRE_GPU()                                                                        \
  do {                                                                                               \
    const std::string kestrel_gpu_why_ = ::kestrel::test::gpu_unavailable();                         \
    if (!kestrel_gpu_why_.empty()) {                                                                 \
      if (::kestrel::test::gpu_required()) GTEST_FAIL() << kestrel_gpu_why_ << " (KESTREL_REQUIRE_GPU is set)"; \
      GTEST_SKIP() << kestrel_gpu_why_;                                                              \
    }                                                                                                \
  } while (0)

// Device memory for one test, freed at scope exit.
struct DevBuf {
  void* p = nullptr;
  size_t bytes = 0;
  explicit DevBuf(size_t n) : bytes(n) {
    if (n) {
      EXPECT_EQ(cudaMalloc(&p, n), cudaSuccess);
    }
  }
  template <typename T>
  explicit DevBuf(const std::vector<T>& host) : DevBuf(host.size() * sizeof(T)) {
    if (bytes) {
      EXPECT_EQ(cudaMemcpy(p, host.data(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
    }
  }
  ~DevBuf() {
    if (p) cudaFree(p);
  }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  template <typename T>
  std::vector<T> download() const {
    std::vector<T> h(bytes / sizeof(T));
    EXPECT_EQ(cudaMemcpy(h.data(), p, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
};

inline HostTensor random_tensor(const Shape& s, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  HostTensor t(DType::F32, s);
  for (float& v : t.span<float>()) v = u(rng);
  return t;
}

inline double rel_l2(const HostTensor& a, const HostTensor& b) {
  const HostTensor fa = a.dtype() == DType::F32 ? a : a.cast(DType::F32);
  const HostTensor fb = b.dtype() == DType::F32 ? b : b.cast(DType::F32);
  if (fa.numel() != fb.numel()) return INFINITY;
  double num = 0, den = 0;
  for (int64_t i = 0; i < fa.numel(); ++i) {
    const double x = fa.data<float>()[i], y = fb.data<float>()[i];
    if (!std::isfinite(x)) return INFINITY;
    num += (x - y) * (x - y);
    den += y * y;
  }
  if (den == 0) return num == 0 ? 0 : INFINITY;
  return std::sqrt(num / den);
}

inline bool all_finite(const HostTensor& t) {
  const HostTensor f = t.dtype() == DType::F32 ? t : t.cast(DType::F32);
  for (float v : f.span<float>())
    if (!std::isfinite(v)) return false;
  return true;
}

// Runs `ctx` on host inputs through the device-pointer API; the output buffers are filled with NaN
// before the run, so an element the engine never writes shows up.
inline std::vector<HostTensor> run_poisoned(ExecutionContext& ctx, const std::vector<HostTensor>& inputs) {
  const EngineInfo& info = ctx.info();
  std::vector<void*> din, dout;
  for (size_t i = 0; i < inputs.size() && i < info.inputs.size(); ++i) ctx.set_input_shape(info.inputs[i].name, inputs[i].shape());
  for (size_t i = 0; i < inputs.size(); ++i) {
    void* p = nullptr;
    EXPECT_EQ(cudaMalloc(&p, std::max<size_t>(inputs[i].nbytes(), 4)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(p, inputs[i].raw(), inputs[i].nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
    din.push_back(p);
  }
  std::vector<HostTensor> outs;
  for (auto& o : info.outputs) {
    outs.emplace_back(o.dtype, ctx.tensor_shape(o.name));
    void* p = nullptr;
    EXPECT_EQ(cudaMalloc(&p, std::max<size_t>(outs.back().nbytes(), 4)), cudaSuccess);
    EXPECT_EQ(cudaMemset(p, 0xFF, outs.back().nbytes()), cudaSuccess);  // NaN in f32 and f16
    dout.push_back(p);
  }
  std::vector<const void*> cin(din.begin(), din.end());
  ctx.enqueue(cin, dout, ctx.stream());
  EXPECT_EQ(cudaStreamSynchronize(ctx.stream()), cudaSuccess);
  for (size_t i = 0; i < outs.size(); ++i)
    EXPECT_EQ(cudaMemcpy(outs[i].raw(), dout[i], outs[i].nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  for (void* p : din) cudaFree(p);
  for (void* p : dout) cudaFree(p);
  return outs;
}

inline BuilderConfig config(Precision p) {
  BuilderConfig c;
  c.precision = p;
  if (const char* tc = std::getenv("KESTREL_TEST_TIMING_CACHE"); tc && *tc) c.timing_cache_path = tc;
  return c;
}

inline double tolerance(Precision p) { return p == Precision::FP16 ? 5e-3 : 1e-4; }

}  // namespace kestrel::test
