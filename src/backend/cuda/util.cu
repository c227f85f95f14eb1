#include "backend/cuda/check.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/util.h"

namespace kestrel::cuda {

namespace {

__device__ __forceinline__ uint32_t hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

__global__ void fill_kernel(void* p, int dt, long long n, uint32_t seed, float lo, float hi) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const uint32_t h = hash32(static_cast<uint32_t>(i) * 2654435761U ^ hash32(seed + static_cast<uint32_t>(i >> 32)));
  const float u = (h >> 8) * (1.0f / 16777216.0f);
  float v = lo + (hi - lo) * u;
  if (dt == kBool) v = (h & 1) ? 1.f : 0.f;
  else if (dt == kI8) v = static_cast<float>(static_cast<int>(h % 255) - 127);  // int8 activation codes, full range
  else if (dt != kF32 && dt != kF16 && dt != kBF16) v = static_cast<float>(h % 7);  // small indices
  store_from_float(p, dt, i, v);
}

__global__ void diff_kernel(const void* a, int adt, Strided as, const void* b, int bdt, Strided bs, int n, double* acc) {
  double num = 0, den = 0;
  int bad = 0;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const float x = load_as_float(a, adt, strided_offset(as, i));
    const float y = load_as_float(b, bdt, strided_offset(bs, i));
    if (!isfinite(x) || !isfinite(y)) bad = 1;
    const double d = static_cast<double>(x) - y;
    num += d * d;
    den += static_cast<double>(y) * y;
  }
  atomicAdd(&acc[0], num);
  atomicAdd(&acc[1], den);
  if (bad) atomicAdd(&acc[2], 1.0);
}

__global__ void poison_kernel(void* p, int dt, Strided s, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) store_from_float(p, dt, strided_offset(s, i), __int_as_float(0x7fc00000));
}

}  // namespace

void poison_view(void* p, const TensorMeta& m, cudaStream_t stream) {
  const int n = static_cast<int>(m.numel());
  if (n == 0 || (m.dtype != DType::F32 && m.dtype != DType::F16)) return;
  poison_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(p, static_cast<int>(m.dtype), make_strided(m), n);
  KLAUNCH("poison");
}

void fill_random(void* p, DType dt, int64_t n, uint32_t seed, float lo, float hi, cudaStream_t stream) {
  if (n <= 0) return;
  fill_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, stream>>>(p, static_cast<int>(dt), n, seed, lo, hi);
  KLAUNCH("fill_random");
}

double rel_l2_device(const void* a, const TensorMeta& ma, const void* b, const TensorMeta& mb, cudaStream_t stream) {
  const int n = static_cast<int>(ma.numel());
  if (n == 0) return 0;
  double* acc = nullptr;
  KCUDA(cudaMalloc(&acc, 3 * sizeof(double)));
  KCUDA(cudaMemsetAsync(acc, 0, 3 * sizeof(double), stream));
  diff_kernel<<<256, 256, 0, stream>>>(a, static_cast<int>(ma.dtype), make_strided(ma), b, static_cast<int>(mb.dtype),
                                      make_strided(mb), n, acc);
  KLAUNCH("rel_l2");
  double h[3];
  KCUDA(cudaMemcpyAsync(h, acc, sizeof(h), cudaMemcpyDeviceToHost, stream));
  KCUDA(cudaStreamSynchronize(stream));
  KCUDA(cudaFree(acc));
  if (h[2] > 0) return INFINITY;
  if (h[1] == 0) return h[0] == 0 ? 0 : INFINITY;
  return sqrt(h[0] / h[1]);
}

}  // namespace kestrel::cuda
