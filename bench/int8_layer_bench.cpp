// One INT8 convolution on int8 X, each tactic family at its best (CUDA events, 20 runs after 3 warm-up
// runs per tactic):
//   igemm8     the fastest igemm8_* tactic (the tensor-core implicit GEMM)
//   cudnn8     the fastest cudnn8_* tactic (cuDNN's graph API; "-" where cuDNN offers none)
//   quantize   the kestrel.QuantizeInt8 pass that turns the fp16 activation into the conv's int8 X
// Every kestrel.ConvInt8 reads int8 codes: from a QuantizeInt8 layer (src/builder/lower.cpp) unless its
// producer is an INT8 conv writing them itself (src/builder/requantize.cpp); with one, quantize + the
// faster conv is what the layer costs.
// Usage: int8_layer_bench  (YOLOv8n-like layers at batch 32)
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/layer.h"
#include "kestrel/error.h"

namespace {

using namespace kestrel;
using cuda::TensorMeta;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "int8_layer_bench: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

TensorMeta meta(DType dt, const Shape& s, bool channels_last) {
  TensorMeta m;
  m.dtype = dt;
  m.shape = s;
  m.channels_last = channels_last;
  if (channels_last) {
    m.strides = {s[1] * s[2] * s[3], 1, s[3] * s[1], s[1]};
  } else {
    m.strides.assign(s.size(), 1);
    for (int64_t d = static_cast<int64_t>(s.size()) - 2; d >= 0; --d) m.strides[d] = m.strides[d + 1] * s[d + 1];
  }
  return m;
}

void* upload(const void* host, size_t bytes) {
  void* p = nullptr;
  check(cudaMalloc(&p, bytes), "cudaMalloc");
  if (host) check(cudaMemcpy(p, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
  return p;
}

using Best = std::pair<double, std::string>;  // mean ms, tactic

// The fastest tactic of each family (the tactic name up to its '_'; "default" for a layer without
// tactics of its own). A tactic that cannot be prepared here (a cuDNN plan failing to compile) is left out.
std::map<std::string, Best> best_times(cuda::Layer& layer, cuda::Handles& handles, const std::vector<const void*>& in,
                                       void* out) {
  cudaStream_t stream = nullptr;
  check(cudaStreamCreate(&stream), "cudaStreamCreate");
  cudaEvent_t t0, t1;
  check(cudaEventCreate(&t0), "cudaEventCreate");
  check(cudaEventCreate(&t1), "cudaEventCreate");
  std::map<std::string, Best> best;
  for (const std::string& t : layer.tactics(handles)) {
    if (t == "direct") continue;  // the reference kernel, not a contender
    try {
      layer.set_tactic(t, handles);
    } catch (const Error& e) {
      std::fprintf(stderr, "int8_layer_bench: %s: %s\n", t.c_str(), e.what());
      continue;
    }
    void* scratch = layer.scratch_bytes() ? upload(nullptr, static_cast<size_t>(layer.scratch_bytes())) : nullptr;
    cuda::LayerIO io;
    io.in = in;
    io.out = {out};
    io.scratch = scratch;
    constexpr int kWarm = 3, kIters = 20;
    for (int i = 0; i < kWarm; ++i) layer.enqueue(io, stream, handles);
    check(cudaEventRecord(t0, stream), "cudaEventRecord");
    for (int i = 0; i < kIters; ++i) layer.enqueue(io, stream, handles);
    check(cudaEventRecord(t1, stream), "cudaEventRecord");
    check(cudaEventSynchronize(t1), "run");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, t0, t1), "cudaEventElapsedTime");
    const std::string family = t.substr(0, t.find('_'));
    auto it = best.find(family);
    if (it == best.end() || ms / kIters < it->second.first) best[family] = {ms / kIters, t};
    if (scratch) cudaFree(scratch);
  }
  cudaEventDestroy(t0);
  cudaEventDestroy(t1);
  cudaStreamDestroy(stream);
  return best;
}

// "0.1234 ms (igemm8_128x64)", or "-" where the family offered nothing.
std::string show(const std::map<std::string, Best>& best, const std::string& family) {
  auto it = best.find(family);
  if (it == best.end()) return "-";
  char buf[128];
  std::snprintf(buf, sizeof buf, "%.4f ms (%s)", it->second.first, it->second.second.c_str());
  return buf;
}

}  // namespace

int main() try {
  cuda::Handles handles;
  if (cudnnCreate(&handles.cudnn) != CUDNN_STATUS_SUCCESS) {
    std::fprintf(stderr, "int8_layer_bench: cudnnCreate failed\n");
    return 1;
  }
  struct Layer {
    const char* name;
    int64_t n, c, h, w, k, ksize;
  };
  const Layer layers[] = {{"3x3 C64->K64 80x80 N32", 32, 64, 80, 80, 64, 3}, {"1x1 C128->K64 80x80 N32", 32, 128, 80, 80, 64, 1}};
  for (const Layer& l : layers) {
    const int64_t N = l.n, C = l.c, H = l.h, W = l.w, K = l.k, R = l.ksize;
    TensorMeta xh = meta(DType::F16, {N, C, H, W}, true), xq = meta(DType::I8, {N, C, H, W}, true);
    TensorMeta wm = meta(DType::I8, {K, R, R, C}, false), sm = meta(DType::F32, {K}, false);
    TensorMeta ym = meta(DType::F16, {N, K, H, W}, true);
    const float s_x = 0.02f;
    using I = std::vector<int64_t>;
    cuda::LayerSpec cspec;
    cspec.name = l.name;
    cspec.op = "kestrel.ConvInt8";
    cspec.attrs.set("kernel_shape", I{R, R});
    cspec.attrs.set("pads", I{R / 2, R / 2, R / 2, R / 2});
    cspec.attrs.set("activation", std::string("silu"));
    cspec.in = {&xq, &wm, &sm, &sm, nullptr};
    cspec.out = {&ym};
    auto conv = cuda::create_layer(cspec);
    cuda::LayerSpec qspec;
    qspec.name = l.name;
    qspec.op = "kestrel.QuantizeInt8";
    qspec.attrs.set("scale", s_x);
    qspec.in = {&xh};
    qspec.out = {&xq};
    auto quant = cuda::create_layer(qspec);

    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-3.f, 3.f);
    std::vector<__half> xv(static_cast<size_t>(N * H * W * C));
    for (auto& v : xv) v = __float2half(u(rng));
    std::vector<int8_t> wv(static_cast<size_t>(K * R * R * C));
    for (auto& v : wv) v = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
    std::vector<float> sc(static_cast<size_t>(K), 1e-4f);
    void* x = upload(xv.data(), xv.size() * 2);
    void* x8 = upload(nullptr, xv.size());
    void* w = upload(wv.data(), wv.size());
    void* s = upload(sc.data(), sc.size() * 4);
    void* y = upload(nullptr, static_cast<size_t>(N * H * W * K) * 2);
    const auto q = best_times(*quant, handles, {x}, x8);  // also leaves the int8 X the conv reads
    const auto c = best_times(*conv, handles, {x8, w, s, s, nullptr}, y);
    std::printf("%-26s igemm8 %s | cudnn8 %s | quantize %s\n", l.name, show(c, "igemm8").c_str(),
                show(c, "cudnn8").c_str(), show(q, "default").c_str());
    for (void* p : {x, x8, w, s, y}) cudaFree(p);
  }
  cudnnDestroy(handles.cudnn);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "int8_layer_bench: %s\n", e.what());
  return 1;
}
