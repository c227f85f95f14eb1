// Does cuDNN have fast INT8 convolutions for YOLO's layer shapes on this GPU? For each shape, builds
// operation graphs with the backend's CudnnGraph (FP16 conv; INT8 conv with an FP32 or (identity)
// FP16 result; INT8 conv with the epilogue as pointwise nodes: per-channel scale, bias, SiLU) and times
// every plan of the heuristics' first configs, run-time compiled ones included. The answer is recorded
// in bench/RESULTS.md (v8); the fused form is what kestrel.ConvInt8's cudnn8_N tactics run.
//   cudnn_int8_probe [N]
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "backend/cuda/cudnn_be.h"
#include "kestrel/error.h"

namespace {

using kestrel::cuda::ConvParams;
using kestrel::cuda::CudnnGraph;
using kestrel::cuda::dense_nhwc;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "cudnn_int8_probe: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

struct Shape { const char* name; int n, c, k, h, w, r, stride; };

enum class Kind { kFp16, kInt8ToFloat, kInt8ToHalf, kInt8Fused };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kFp16: return "fp16->fp16";
    case Kind::kInt8ToFloat: return "int8->fp32";
    case Kind::kInt8ToHalf: return "int8->fp16(identity)";
    case Kind::kInt8Fused: return "int8->scale,bias,silu->fp16";
  }
  return "?";
}

ConvParams params(const Shape& sh) {
  ConvParams p{};
  p.N = sh.n, p.C = sh.c, p.H = sh.h, p.W = sh.w, p.K = sh.k, p.KH = p.KW = sh.r;
  p.sh = p.sw = sh.stride, p.ph = p.pw = sh.r / 2, p.dh = p.dw = 1, p.group = 1;
  p.OH = (sh.h + 2 * p.ph - sh.r) / sh.stride + 1, p.OW = (sh.w + 2 * p.pw - sh.r) / sh.stride + 1;
  const long long xs[4] = {1LL * sh.h * sh.w * sh.c, 1, 1LL * sh.w * sh.c, sh.c};
  for (int d = 0; d < 4; ++d) p.xs[d] = xs[d];
  return p;
}

// Best ms over the plans, or -1 when none runs; prints every plan's time.
double probe(cudnnHandle_t h, const Shape& sh, Kind kind, void* x, void* w, void* y, void* scale, void* bias, void* ws,
             int64_t ws_cap) {
  const ConvParams p = params(sh);
  const bool i8 = kind != Kind::kFp16;
  const int64_t xd[4] = {p.N, p.C, p.H, p.W}, wd[4] = {p.K, p.C, p.KH, p.KW}, yd[4] = {p.N, p.K, p.OH, p.OW};
  const int64_t cd[4] = {1, p.K, 1, 1}, cs[4] = {p.K, 1, 1, 1};
  int64_t xs[4], wst[4], ys[4];
  dense_nhwc(xd, xs);
  dense_nhwc(wd, wst);
  dense_nhwc(yd, ys);
  CudnnGraph g;
  const auto in_t = i8 ? CUDNN_DATA_INT8 : CUDNN_DATA_HALF;
  auto X = g.tensor('x', in_t, xd, xs), W = g.tensor('w', in_t, wd, wst);
  std::vector<int64_t> uids{'x', 'w', 'y'};
  std::vector<void*> ptrs{x, w, y};
  if (kind == Kind::kFp16 || kind == Kind::kInt8ToFloat) {
    g.conv(p, X, W, g.tensor('y', i8 ? CUDNN_DATA_FLOAT : CUDNN_DATA_HALF, yd, ys), i8 ? CUDNN_DATA_INT32 : CUDNN_DATA_FLOAT);
  } else {
    auto acc = g.tensor(100, CUDNN_DATA_INT32, yd, ys, true);
    g.conv(p, X, W, acc, CUDNN_DATA_INT32);
    auto Y = g.tensor('y', CUDNN_DATA_HALF, yd, ys);
    if (kind == Kind::kInt8ToHalf) {
      g.pointwise(CUDNN_POINTWISE_IDENTITY, acc, nullptr, Y);
    } else {
      auto t1 = g.tensor(101, CUDNN_DATA_FLOAT, yd, ys, true), t2 = g.tensor(102, CUDNN_DATA_FLOAT, yd, ys, true);
      g.pointwise(CUDNN_POINTWISE_MUL, acc, g.tensor('s', CUDNN_DATA_FLOAT, cd, cs), t1);
      g.pointwise(CUDNN_POINTWISE_ADD, t1, g.tensor('b', CUDNN_DATA_FLOAT, cd, cs), t2);
      g.pointwise(CUDNN_POINTWISE_SWISH_FWD, t2, nullptr, Y);
      uids.push_back('s'), ptrs.push_back(scale);
      uids.push_back('b'), ptrs.push_back(bias);
    }
  }
  g.finalize(h, 12, ws_cap, /*runtime_compiled=*/true, /*eager=*/false);
  double best = -1;
  for (int i = 0; i < g.plans(); ++i) {
    try {
      g.build(i, h);
      g.execute(i, h, uids.data(), ptrs.data(), static_cast<int>(uids.size()), ws);
      cudaEvent_t a, b;
      check(cudaEventCreate(&a), "cudaEventCreate");
      check(cudaEventCreate(&b), "cudaEventCreate");
      constexpr int kReps = 20;
      check(cudaEventRecord(a), "cudaEventRecord");
      for (int r = 0; r < kReps; ++r) g.execute(i, h, uids.data(), ptrs.data(), static_cast<int>(uids.size()), ws);
      check(cudaEventRecord(b), "cudaEventRecord");
      check(cudaEventSynchronize(b), "cudaEventSynchronize");
      float ms = 0;
      check(cudaEventElapsedTime(&ms, a, b), "cudaEventElapsedTime");
      cudaEventDestroy(a);
      cudaEventDestroy(b);
      const double per = ms / kReps;
      std::printf("    %-28s plan %2d: %.4f ms\n", kind_name(kind), i, per);
      if (best < 0 || per < best) best = per;
    } catch (const kestrel::Error& e) {
      std::printf("    %-28s plan %2d: %s\n", kind_name(kind), i, e.what());
    }
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 32;
  std::printf("cuDNN %zu\n", cudnnGetVersion());
  const Shape shapes[] = {
      {"m1", n, 16, 32, 320, 320, 3, 2},   {"m2cv1", n, 32, 32, 160, 160, 1, 1}, {"m2bot", n, 16, 16, 160, 160, 3, 1},
      {"m3", n, 32, 64, 160, 160, 3, 2},   {"m4bot", n, 32, 32, 80, 80, 3, 1},   {"head64", n, 64, 64, 80, 80, 3, 1},
      {"m15cv2", n, 96, 64, 80, 80, 1, 1}, {"m6bot", n, 64, 64, 40, 40, 3, 1},   {"m8bot", n, 128, 128, 20, 20, 3, 1},
  };
  cudnnHandle_t h;
  if (cudnnCreate(&h) != CUDNN_STATUS_SUCCESS) {
    std::fprintf(stderr, "cudnn_int8_probe: cudnnCreate failed\n");
    return 1;
  }
  const size_t big = size_t(n) * 64 * 320 * 320 * 4;
  const int64_t ws_cap = int64_t{256} << 20;
  void *x, *w, *y, *s, *b, *ws;
  check(cudaMalloc(&x, big), "cudaMalloc");
  check(cudaMalloc(&w, 1 << 22), "cudaMalloc");
  check(cudaMalloc(&y, big), "cudaMalloc");
  check(cudaMalloc(&s, 4096), "cudaMalloc");
  check(cudaMalloc(&b, 4096), "cudaMalloc");
  check(cudaMalloc(&ws, static_cast<size_t>(ws_cap)), "cudaMalloc");
  check(cudaMemset(x, 1, big), "cudaMemset");
  check(cudaMemset(w, 1, 1 << 22), "cudaMemset");
  check(cudaMemset(s, 0, 4096), "cudaMemset");
  check(cudaMemset(b, 0, 4096), "cudaMemset");
  for (const Shape& sh : shapes)
    for (Kind k : {Kind::kFp16, Kind::kInt8ToFloat, Kind::kInt8ToHalf, Kind::kInt8Fused}) {
      try {
        const double best = probe(h, sh, k, x, w, y, s, b, ws, ws_cap);
        if (best < 0)
          std::printf("  %-8s %-28s no plan runs\n", sh.name, kind_name(k));
        else
          std::printf("  %-8s %-28s best %.4f ms\n", sh.name, kind_name(k), best);
      } catch (const kestrel::Error& e) {
        std::printf("  %-8s %-28s graph refused: %s\n", sh.name, kind_name(k), e.what());
      }
      std::fflush(stdout);
    }
  return 0;
}
