// Does cuDNN have fast INT8 convolutions for YOLO's layer shapes on this GPU? For each shape, builds
// cuDNN graph-API operation graphs (FP16 conv; INT8 conv with an INT32/FP32/FP16 result; INT8 conv with
// the epilogue as pointwise nodes: per-channel scale, bias, SiLU) and times every execution plan the
// heuristics offer, run-time compiled engines included (their finalize time is printed). A yes here
// would make cuDNN an INT8 tactic; the answer is recorded in bench/RESULTS.md.
//   cudnn_int8_probe [N]
#include <cuda_runtime.h>
#include <cudnn.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

#define CK(x)                                                                             \
  do {                                                                                    \
    cudnnStatus_t s_ = (x);                                                               \
    if (s_ != CUDNN_STATUS_SUCCESS) throw std::string(#x) + ": " + cudnnGetErrorString(s_); \
  } while (0)
#define CC(x)                                                                                          \
  do {                                                                                                 \
    cudaError_t e_ = (x);                                                                              \
    if (e_ != cudaSuccess) { std::fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e_)); std::exit(1); } \
  } while (0)

struct Shape { const char* name; int n, c, k, h, w, r, s, stride; };

// Descriptors of one graph, destroyed together.
struct Graph {
  std::vector<cudnnBackendDescriptor_t> owned;
  cudnnBackendDescriptor_t make(cudnnBackendDescriptorType_t t) {
    cudnnBackendDescriptor_t d = nullptr;
    CK(cudnnBackendCreateDescriptor(t, &d));
    owned.push_back(d);
    return d;
  }
  ~Graph() { for (auto it = owned.rbegin(); it != owned.rend(); ++it) cudnnBackendDestroyDescriptor(*it); }
  cudnnBackendDescriptor_t tensor(int64_t uid, cudnnDataType_t dt, std::vector<int64_t> dims, bool is_virtual) {
    // NHWC strides for dims [N, C, H, W].
    const int64_t n = dims[0], c = dims[1], h = dims[2], w = dims[3];
    (void)n;
    int64_t st[4] = {c * h * w, 1, c * w, c};
    if (c == 1 && h == 1 && w == 1) st[0] = st[1] = st[2] = st[3] = 1;
    auto t = make(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    const int64_t align = 16;
    CK(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt));
    CK(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims.data()));
    CK(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, st));
    CK(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid));
    CK(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align));
    const bool v = is_virtual;
    CK(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &v));
    CK(cudnnBackendFinalize(t));
    return t;
  }
  cudnnBackendDescriptor_t pointwise(cudnnPointwiseMode_t mode, cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t b,
                                     cudnnBackendDescriptor_t y) {
    auto pw = make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    CK(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode));
    CK(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec));
    if (mode == CUDNN_POINTWISE_SWISH_FWD) {
      const double beta = 1.0;
      CK(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_SWISH_BETA, CUDNN_TYPE_DOUBLE, 1, &beta));
    }
    CK(cudnnBackendFinalize(pw));
    auto op = make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    CK(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw));
    CK(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x));
    if (b) CK(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b));
    CK(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y));
    CK(cudnnBackendFinalize(op));
    return op;
  }
};

enum class Kind { kFp16, kInt8ToInt32, kInt8ToFloat, kInt8ToHalf, kInt8Fused };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kFp16: return "fp16->fp16";
    case Kind::kInt8ToInt32: return "int8->int32";
    case Kind::kInt8ToFloat: return "int8->fp32";
    case Kind::kInt8ToHalf: return "int8->fp16(identity)";
    case Kind::kInt8Fused: return "int8->scale,bias,silu->fp16";
  }
  return "?";
}

void probe(cudnnHandle_t h, const Shape& sh, Kind kind, void* x, void* w, void* y, void* scale, void* bias, void* ws,
           size_t ws_cap) {
  Graph g;
  const int oh = (sh.h + 2 * (sh.r / 2) - sh.r) / sh.stride + 1, ow = (sh.w + 2 * (sh.s / 2) - sh.s) / sh.stride + 1;
  const bool i8 = kind != Kind::kFp16;
  const cudnnDataType_t in_t = i8 ? CUDNN_DATA_INT8 : CUDNN_DATA_HALF;
  const cudnnDataType_t comp = i8 ? CUDNN_DATA_INT32 : CUDNN_DATA_FLOAT;
  auto X = g.tensor('x', in_t, {sh.n, sh.c, sh.h, sh.w}, false);
  auto W = g.tensor('w', in_t, {sh.k, sh.c, sh.r, sh.s}, false);
  const bool conv_virtual = kind == Kind::kInt8ToHalf || kind == Kind::kInt8Fused;
  cudnnDataType_t conv_t = CUDNN_DATA_HALF;
  if (kind == Kind::kInt8ToInt32) conv_t = CUDNN_DATA_INT32;
  if (kind == Kind::kInt8ToFloat) conv_t = CUDNN_DATA_FLOAT;
  if (conv_virtual) conv_t = CUDNN_DATA_INT32;
  auto C = g.tensor(conv_virtual ? 'c' : 'y', conv_t, {sh.n, sh.k, oh, ow}, conv_virtual);

  auto conv = g.make(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  const int64_t dims = 2, pad[2] = {sh.r / 2, sh.s / 2}, stride[2] = {sh.stride, sh.stride}, dil[2] = {1, 1};
  CK(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp));
  CK(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode));
  CK(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &dims));
  CK(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dil));
  CK(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, stride));
  CK(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pad));
  CK(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, pad));
  CK(cudnnBackendFinalize(conv));
  auto cop = g.make(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
  const float alpha = 1.f, beta = 0.f;
  CK(cudnnBackendSetAttribute(cop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &X));
  CK(cudnnBackendSetAttribute(cop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &W));
  CK(cudnnBackendSetAttribute(cop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &C));
  CK(cudnnBackendSetAttribute(cop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv));
  CK(cudnnBackendSetAttribute(cop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha));
  CK(cudnnBackendSetAttribute(cop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta));
  CK(cudnnBackendFinalize(cop));
  std::vector<cudnnBackendDescriptor_t> ops{cop};
  std::vector<int64_t> uids{'x', 'w', 'y'};
  std::vector<void*> ptrs{x, w, y};
  if (kind == Kind::kInt8ToHalf) {
    auto Y = g.tensor('y', CUDNN_DATA_HALF, {sh.n, sh.k, oh, ow}, false);
    ops.push_back(g.pointwise(CUDNN_POINTWISE_IDENTITY, C, nullptr, Y));
  } else if (kind == Kind::kInt8Fused) {
    auto S = g.tensor('s', CUDNN_DATA_FLOAT, {1, sh.k, 1, 1}, false);
    auto B = g.tensor('b', CUDNN_DATA_FLOAT, {1, sh.k, 1, 1}, false);
    auto T1 = g.tensor('1', CUDNN_DATA_FLOAT, {sh.n, sh.k, oh, ow}, true);
    auto T2 = g.tensor('2', CUDNN_DATA_FLOAT, {sh.n, sh.k, oh, ow}, true);
    auto Y = g.tensor('y', CUDNN_DATA_HALF, {sh.n, sh.k, oh, ow}, false);
    ops.push_back(g.pointwise(CUDNN_POINTWISE_MUL, C, S, T1));
    ops.push_back(g.pointwise(CUDNN_POINTWISE_ADD, T1, B, T2));
    ops.push_back(g.pointwise(CUDNN_POINTWISE_SWISH_FWD, T2, nullptr, Y));
    uids.push_back('s'); ptrs.push_back(scale);
    uids.push_back('b'); ptrs.push_back(bias);
  }
  auto graph = g.make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  CK(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                              static_cast<int64_t>(ops.size()), ops.data()));
  (void)cudnnBackendSetAttribute(graph, static_cast<cudnnBackendAttributeName_t>(800), CUDNN_TYPE_HANDLE, 1, &h);
  CK(cudnnBackendFinalize(graph));

  double best = 1e30;
  int tried = 0, ok = 0;
  for (cudnnBackendHeurMode_t hm : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    auto heur = g.make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    CK(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph));
    CK(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &hm));
    if (cudnnBackendFinalize(heur) != CUDNN_STATUS_SUCCESS) continue;
    constexpr int kAsk = 16;
    cudnnBackendDescriptor_t cfgs[kAsk];
    for (auto& c : cfgs) c = g.make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    int64_t got = 0;
    if (cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, kAsk, &got, cfgs) !=
        CUDNN_STATUS_SUCCESS)
      continue;
    for (int64_t i = 0; i < got; ++i) {
      ++tried;
      auto eng = g.make(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
      int64_t n = 0, gidx = -1;
      cudnnBackendGetAttribute(cfgs[i], CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &eng);
      cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &gidx);
      bool rtc = false;
      cudnnBackendBehaviorNote_t bn[16];
      int64_t nb = 0;
      if (cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE, 16, &nb, bn) ==
          CUDNN_STATUS_SUCCESS)
        for (int64_t k = 0; k < nb && k < 16; ++k) rtc |= bn[k] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION;
      auto plan = g.make(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
      (void)cudnnBackendSetAttribute(plan, static_cast<cudnnBackendAttributeName_t>(400), CUDNN_TYPE_HANDLE, 1, &h);
      const auto t0 = std::chrono::steady_clock::now();
      if (cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                   &cfgs[i]) != CUDNN_STATUS_SUCCESS ||
          cudnnBackendFinalize(plan) != CUDNN_STATUS_SUCCESS)
        continue;
      const double fin_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      int64_t wsb = 0;
      cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n, &wsb);
      if (wsb > static_cast<int64_t>(ws_cap)) continue;
      auto vp = g.make(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
      CK(cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64,
                                  static_cast<int64_t>(uids.size()), uids.data()));
      CK(cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR,
                                  static_cast<int64_t>(ptrs.size()), ptrs.data()));
      CK(cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws));
      CK(cudnnBackendFinalize(vp));
      if (cudnnBackendExecute(h, plan, vp) != CUDNN_STATUS_SUCCESS) continue;
      cudaEvent_t a, b;
      CC(cudaEventCreate(&a));
      CC(cudaEventCreate(&b));
      CC(cudaEventRecord(a));
      const int reps = 20;
      for (int r = 0; r < reps; ++r) CK(cudnnBackendExecute(h, plan, vp));
      CC(cudaEventRecord(b));
      CC(cudaEventSynchronize(b));
      float ms = 0;
      CC(cudaEventElapsedTime(&ms, a, b));
      cudaEventDestroy(a);
      cudaEventDestroy(b);
      ++ok;
      const double per = ms / reps;
      if (per < best) best = per;
      std::printf("    %-28s heur%d engine %3lld%s finalize %7.1f ms ws %8lld: %.4f ms\n", kind_name(kind),
                  hm == CUDNN_HEUR_MODE_A ? 0 : 1, static_cast<long long>(gidx), rtc ? " rtc" : "    ", fin_ms,
                  static_cast<long long>(wsb), per);
    }
  }
  std::printf("  %-8s %-28s configs %d ran %d best %s\n", sh.name, kind_name(kind), tried, ok,
              ok ? std::to_string(best).c_str() : "-");
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 32;
  std::printf("cuDNN %zu\n", cudnnGetVersion());
  const Shape shapes[] = {
      {"m1", n, 16, 32, 320, 320, 3, 3, 2},   {"m2cv1", n, 32, 32, 160, 160, 1, 1, 1},
      {"m2bot", n, 16, 16, 160, 160, 3, 3, 1}, {"m3", n, 32, 64, 160, 160, 3, 3, 2},
      {"m4bot", n, 32, 32, 80, 80, 3, 3, 1},  {"head64", n, 64, 64, 80, 80, 3, 3, 1},
      {"m15cv2", n, 96, 64, 80, 80, 1, 1, 1}, {"m6bot", n, 64, 64, 40, 40, 3, 3, 1},
      {"m8bot", n, 128, 128, 20, 20, 3, 3, 1},
  };
  cudnnHandle_t h;
  if (cudnnCreate(&h) != CUDNN_STATUS_SUCCESS) { std::fprintf(stderr, "cudnnCreate failed\n"); return 1; }
  const size_t big = size_t(n) * 64 * 320 * 320 * 4, ws_cap = size_t(256) << 20;
  void *x, *w, *y, *s, *b, *ws;
  CC(cudaMalloc(&x, big));
  CC(cudaMalloc(&w, 1 << 22));
  CC(cudaMalloc(&y, big));
  CC(cudaMalloc(&s, 4096));
  CC(cudaMalloc(&b, 4096));
  CC(cudaMalloc(&ws, ws_cap));
  CC(cudaMemset(x, 1, big));
  CC(cudaMemset(w, 1, 1 << 22));
  CC(cudaMemset(s, 0, 4096));
  CC(cudaMemset(b, 0, 4096));
  for (const Shape& sh : shapes)
    for (Kind k : {Kind::kFp16, Kind::kInt8ToInt32, Kind::kInt8ToFloat, Kind::kInt8ToHalf, Kind::kInt8Fused}) {
      try {
        probe(h, sh, k, x, w, y, s, b, ws, ws_cap);
      } catch (const std::string& e) {
        std::printf("  %-8s %-28s graph refused: %s\n", sh.name, kind_name(k), e.c_str());
      }
      std::fflush(stdout);
    }
  return 0;
}
