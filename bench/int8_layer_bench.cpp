// One INT8 convolution three ways, best tactic each (CUDA events, 20 runs after 3 warm-up runs):
//   fp16 X       kestrel.ConvInt8 reading the fp16 activation and quantizing it as it loads it
//   int8 X       the same conv on int8 codes
//   quantize +   a kestrel.QuantizeInt8 pass, then the int8-X conv (what the builder does otherwise)
// The builder reads fp16 X for 1x1 convs and quantizes first for larger windows (src/builder/lower.cpp);
// this measures that choice. Usage: int8_layer_bench  (YOLOv8n-like layers at batch 32)
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <random>
#include <utility>
#include <vector>

#include "backend/cuda/layer.h"

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

// The mean time of the layer's fastest tactic, in ms, and that tactic.
std::pair<double, std::string> best_time(cuda::Layer& layer, const std::vector<const void*>& in, void* out) {
  cuda::Handles handles;
  cudaStream_t stream = nullptr;
  check(cudaStreamCreate(&stream), "cudaStreamCreate");
  cudaEvent_t t0, t1;
  check(cudaEventCreate(&t0), "cudaEventCreate");
  check(cudaEventCreate(&t1), "cudaEventCreate");
  std::pair<double, std::string> best{1e30, ""};
  for (const std::string& t : layer.tactics(handles)) {
    layer.set_tactic(t, handles);
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
    if (ms / kIters < best.first) best = {ms / kIters, t};
    if (scratch) cudaFree(scratch);
  }
  cudaEventDestroy(t0);
  cudaEventDestroy(t1);
  cudaStreamDestroy(stream);
  return best;
}

}  // namespace

int main() try {
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
    auto conv_spec = [&](TensorMeta* x, float x_scale) {
      cuda::LayerSpec spec;
      spec.name = l.name;
      spec.op = "kestrel.ConvInt8";
      spec.attrs.set("kernel_shape", I{R, R});
      spec.attrs.set("pads", I{R / 2, R / 2, R / 2, R / 2});
      spec.attrs.set("activation", std::string("silu"));
      if (x_scale > 0.f) spec.attrs.set("x_scale", x_scale);
      spec.in = {x, &wm, &sm, &sm, nullptr};
      spec.out = {&ym};
      return spec;
    };
    auto conv_half = cuda::create_layer(conv_spec(&xh, s_x));
    auto conv_i8 = cuda::create_layer(conv_spec(&xq, 0.f));
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
    const auto half = best_time(*conv_half, {x, w, s, s, nullptr}, y);
    const auto i8 = best_time(*conv_i8, {x8, w, s, s, nullptr}, y);
    const auto q = best_time(*quant, {x}, x8);
    std::printf("%-26s fp16 X %.4f ms (%s) | int8 X %.4f ms (%s) | quantize %.4f ms + int8 X = %.4f ms\n", l.name,
                half.first, half.second.c_str(), i8.first, i8.second.c_str(), q.first, q.first + i8.first);
    for (void* p : {x, x8, w, s, y}) cudaFree(p);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "int8_layer_bench: %s\n", e.what());
  return 1;
}
