#include "backend/cuda/cudnn_be.h"

#include <cstdint>

#include "backend/cuda/check.h"

namespace kestrel::cuda {

namespace {

constexpr int64_t kUidX = 'x', kUidW = 'w', kUidY = 'y';
// Deprecated names in newer headers (still accepted), required by the cuDNN 9.x the GPU machines run.
constexpr auto kAttrGraphHandle = static_cast<cudnnBackendAttributeName_t>(800);  // OPERATIONGRAPH_HANDLE
constexpr auto kAttrPlanHandle = static_cast<cudnnBackendAttributeName_t>(400);   // EXECUTION_PLAN_HANDLE

}  // namespace

CudnnBeConv::CudnnBeConv(const ConvParams& p, cudnnHandle_t h, int max_plans, int64_t ws_limit) {
  auto make = [&](cudnnBackendDescriptorType_t t) {
    cudnnBackendDescriptor_t d = nullptr;
    KCUDNN(cudnnBackendCreateDescriptor(t, &d));
    owned_.push_back(d);
    return d;
  };
  try {
    auto tensor = [&](int64_t uid, const int64_t (&dims)[4], const int64_t (&strides)[4]) {
      cudnnBackendDescriptor_t t = make(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
      const cudnnDataType_t dt = CUDNN_DATA_HALF;
      const int64_t align = 16;
      KCUDNN(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt));
      KCUDNN(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims));
      KCUDNN(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides));
      KCUDNN(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid));
      KCUDNN(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align));
      KCUDNN(cudnnBackendFinalize(t));
      return t;
    };
    const int64_t xd[4] = {p.N, p.C, p.H, p.W}, xs[4] = {p.xs[0], p.xs[1], p.xs[2], p.xs[3]};
    const int64_t wd[4] = {p.K, p.C, p.KH, p.KW},
                  ws[4] = {static_cast<int64_t>(p.KH) * p.KW * p.C, 1, static_cast<int64_t>(p.KW) * p.C, p.C};
    const int64_t yd[4] = {p.N, p.K, p.OH, p.OW},
                  ys[4] = {static_cast<int64_t>(p.OH) * p.OW * p.K, 1, static_cast<int64_t>(p.OW) * p.K, p.K};
    cudnnBackendDescriptor_t x = tensor(kUidX, xd, xs), w = tensor(kUidW, wd, ws), y = tensor(kUidY, yd, ys);

    cudnnBackendDescriptor_t conv = make(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
    const cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    const int64_t dims = 2, pad[2] = {p.ph, p.pw}, stride[2] = {p.sh, p.sw}, dil[2] = {p.dh, p.dw};
    KCUDNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp));
    KCUDNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode));
    KCUDNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &dims));
    KCUDNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dil));
    KCUDNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, stride));
    KCUDNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pad));
    KCUDNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, pad));
    KCUDNN(cudnnBackendFinalize(conv));

    cudnnBackendDescriptor_t op = make(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
    const float alpha = 1.f, beta = 0.f;
    KCUDNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x));
    KCUDNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &w));
    KCUDNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y));
    KCUDNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv));
    KCUDNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha));
    KCUDNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta));
    KCUDNN(cudnnBackendFinalize(op));

    cudnnBackendDescriptor_t graph = make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    KCUDNN(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &op));
    // Required by older 9.x releases, ignored (deprecated) by newer ones: a refusal is not an error.
    (void)cudnnBackendSetAttribute(graph, kAttrGraphHandle, CUDNN_TYPE_HANDLE, 1, &h);
    KCUDNN(cudnnBackendFinalize(graph));

    cudnnBackendDescriptor_t heur = make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    const cudnnBackendHeurMode_t hm = CUDNN_HEUR_MODE_A;
    KCUDNN(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph));
    KCUDNN(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &hm));
    KCUDNN(cudnnBackendFinalize(heur));
    constexpr int kAsk = 12;
    cudnnBackendDescriptor_t cfgs[kAsk];
    for (auto& c : cfgs) c = make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    int64_t got = 0;
    KCUDNN(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, kAsk, &got, cfgs));

    for (int64_t i = 0; i < got && static_cast<int>(plans_.size()) < max_plans; ++i) {
      // Engine notes: skip run-time compiled, nondeterministic and reduced-precision engines.
      cudnnBackendDescriptor_t eng = make(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
      int64_t n = 0;
      if (cudnnBackendGetAttribute(cfgs[i], CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &eng) !=
              CUDNN_STATUS_SUCCESS ||
          n != 1)
        continue;
      bool skip = false;
      cudnnBackendBehaviorNote_t bn[CUDNN_BEHAVIOR_NOTE_TYPE_COUNT + 4];
      int64_t nb = 0;
      if (cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                                   CUDNN_BEHAVIOR_NOTE_TYPE_COUNT + 4, &nb, bn) == CUDNN_STATUS_SUCCESS)
        for (int64_t k = 0; k < nb && k < CUDNN_BEHAVIOR_NOTE_TYPE_COUNT + 4; ++k)
          skip |= bn[k] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION;
      else
        skip = true;
      cudnnBackendNumericalNote_t nn[CUDNN_NUMERICAL_NOTE_TYPE_COUNT + 4];
      int64_t nnum = 0;
      if (cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                   CUDNN_NUMERICAL_NOTE_TYPE_COUNT + 4, &nnum, nn) == CUDNN_STATUS_SUCCESS)
        for (int64_t k = 0; k < nnum && k < CUDNN_NUMERICAL_NOTE_TYPE_COUNT + 4; ++k)
          skip |= nn[k] == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC || nn[k] == CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION;
      else
        skip = true;
      if (skip) continue;
      cudnnBackendDescriptor_t plan = make(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
      (void)cudnnBackendSetAttribute(plan, kAttrPlanHandle, CUDNN_TYPE_HANDLE, 1, &h);
      if (cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfgs[i]) !=
              CUDNN_STATUS_SUCCESS ||
          cudnnBackendFinalize(plan) != CUDNN_STATUS_SUCCESS)
        continue;
      int64_t wsb = 0, nw = 0;
      if (cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &nw, &wsb) !=
              CUDNN_STATUS_SUCCESS ||
          wsb < 0 || wsb > ws_limit)
        continue;
      plans_.push_back(plan);
      ws_.push_back(wsb);
    }
  } catch (...) {
    for (cudnnBackendDescriptor_t d : owned_) cudnnBackendDestroyDescriptor(d);
    owned_.clear();
    throw;
  }
}

CudnnBeConv::~CudnnBeConv() {
  for (auto it = owned_.rbegin(); it != owned_.rend(); ++it) cudnnBackendDestroyDescriptor(*it);
}

void CudnnBeConv::execute(int i, cudnnHandle_t h, const void* x, const void* w, void* y, void* ws) const {
  KESTREL_CHECK(i >= 0 && i < plans(), "internal: cuDNN plan ", i, " of ", plans());
  KESTREL_CHECK(reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(w) % 16 == 0 &&
                    reinterpret_cast<uintptr_t>(y) % 16 == 0,
                "cuDNN graph convolution: buffers are not 16-byte aligned");
  KESTREL_CHECK(ws_[i] == 0 || ws != nullptr, "internal: cuDNN graph convolution without workspace");
  cudnnBackendDescriptor_t vp = nullptr;
  KCUDNN(cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp));
  cudnnStatus_t s = CUDNN_STATUS_SUCCESS;
  const int64_t uids[3] = {kUidX, kUidW, kUidY};
  void* ptrs[3] = {const_cast<void*>(x), const_cast<void*>(w), y};
  void* wsp = ws;
  if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids);
  if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, ptrs);
  if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &wsp);
  if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendFinalize(vp);
  if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendExecute(h, plans_[i], vp);
  cudnnBackendDestroyDescriptor(vp);
  KCUDNN(s);
}

}  // namespace kestrel::cuda
